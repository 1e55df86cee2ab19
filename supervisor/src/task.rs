//! Long-lived async tasks as supervised children.
//!
//! A loop that has no messages to answer (a queue's writer, a periodic
//! sweep, a subscriber to a broadcast) does not need an actor of its own,
//! but it needs what every child gets: a restart policy, backoff, metrics,
//! a place in `/health`, fault injection. [`ChildSpec::task`] runs the future
//! a factory builds inside a small actor's context, so the supervisor
//! watches it like any other child: a panic in the future unwinds through
//! the context and is reported as [`ExitReason::Panic`], an `Err` is an
//! abnormal exit, `Ok(())` a normal one.
//!
//! What a task owns dies with it. State that must outlive a restart, such as
//! the receiving end of the queue a writer drains, goes in a [`Handover`]:
//! each generation takes it with [`Handover::lease`], and the [`Lease`] puts
//! it back when dropped, while unwinding from a panic too, so the next
//! generation finds the queue with everything still in it.

use super::{ChildContext, ChildRef, ChildSpec, ExitReason, ExitSignal};
use actix::prelude::*;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// What a task's future resolves to: `Err` is an abnormal exit.
pub type TaskResult = Result<(), String>;

type BoxedTask = Pin<Box<dyn Future<Output = TaskResult>>>;

/// The actor a task child runs in. It answers no messages; its address is
/// only good for [`ChildRef::generation`] and liveness.
pub struct TaskActor {
    task: Option<BoxedTask>,
    exit: ExitSignal,
    /// Told when the supervisor asks a graceful task to stop.
    stop: Option<watch::Sender<bool>>,
    done: bool,
}

impl Actor for TaskActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(task) = self.task.take() else {
            return;
        };
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(task).map(|result, act, ctx| {
                if let Err(reason) = result {
                    act.exit.set(ExitReason::Error(reason));
                }
                act.done = true;
                ctx.stop();
            }),
        );
    }

    /// A graceful task is told to stop and keeps running until it ends
    /// (its supervisor's shutdown timeout bounds the wait); any other task
    /// stops at once.
    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        match self.stop.take() {
            // Unwinding from a panic, actix stops the context as it drops
            // it: nothing may run on.
            Some(stop) if !self.done && !std::thread::panicking() => {
                let _ = stop.send(true);
                Running::Continue
            }
            _ => Running::Stop,
        }
    }
}

/// Tells a graceful task (see [`ChildSpec::graceful_task`]) that its
/// supervisor wants it to stop: it should finish what it holds and end.
#[derive(Clone, Debug)]
pub struct StopRequest(watch::Receiver<bool>);

impl StopRequest {
    /// Resolves once a stop is requested.
    pub async fn requested(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether a stop has been requested.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }
}

impl ChildSpec {
    /// A permanent child that runs the future `factory` builds, anew on
    /// every (re)start. See the [module documentation](self).
    pub fn task<F, Fut>(name: impl Into<String>, factory: F) -> (Self, ChildRef<TaskActor>)
    where
        F: Fn(&ChildContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = TaskResult> + 'static,
    {
        Self::new(name, move |cx| TaskActor {
            task: Some(Box::pin(factory(cx))),
            exit: cx.exit.clone(),
            stop: None,
            done: false,
        })
    }

    /// [`ChildSpec::task`] for a task that must finish what it holds when
    /// stopped (a writer with a queue): instead of being dropped, it is
    /// told through its [`StopRequest`] and stops when its future ends.
    pub fn graceful_task<F, Fut>(name: impl Into<String>, factory: F) -> (Self, ChildRef<TaskActor>)
    where
        F: Fn(&ChildContext, StopRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = TaskResult> + 'static,
    {
        Self::new(name, move |cx| {
            let (stop, requested) = watch::channel(false);
            TaskActor {
                task: Some(Box::pin(factory(cx, StopRequest(requested)))),
                exit: cx.exit.clone(),
                stop: Some(stop),
                done: false,
            }
        })
    }
}

/// State a task hands over to its next generation. Cheap to clone.
pub struct Handover<T>(Arc<Mutex<Option<T>>>);

impl<T> Clone for Handover<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> std::fmt::Debug for Handover<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handover")
            .field("held", &self.is_held())
            .finish()
    }
}

impl<T> Handover<T> {
    pub fn new(value: T) -> Self {
        Self(Arc::new(Mutex::new(Some(value))))
    }

    /// Take the value for this generation; `None` while another lease holds
    /// it (two generations never run at once, so that is a bug to report).
    pub fn lease(&self) -> Option<Lease<T>> {
        let value = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        Some(Lease {
            value: Some(value),
            home: self.0.clone(),
        })
    }

    /// Whether a lease holds the value now.
    pub fn is_held(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }
}

/// A task's hold on a [`Handover`]'s value; returns it when dropped.
pub struct Lease<T> {
    value: Option<T>,
    home: Arc<Mutex<Option<T>>>,
}

impl<T> Deref for Lease<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // unwrap: the value is only taken out in Drop.
        self.value.as_ref().unwrap()
    }
}

impl<T> DerefMut for Lease<T> {
    fn deref_mut(&mut self) -> &mut T {
        // unwrap: the value is only taken out in Drop.
        self.value.as_mut().unwrap()
    }
}

impl<T> Drop for Lease<T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            *self.home.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
        }
    }
}
