//! Child specifications, the guard that reports a child's exit, and
//! [`ChildRef`], the always-current handle callers use to reach a child.

use super::{ExitReason, Restart, panic};
use actix::dev::ToEnvelope;
use actix::prelude::*;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// A command from the supervisor (or fault injection) to a running child.
#[derive(Debug)]
pub(crate) enum Control {
    /// Stop the actor (reported as [`ExitReason::Shutdown`]).
    Stop,
    /// Panic inside the actor's context, exactly as a handler panic would.
    Panic(String),
}

/// Sent by a child's guard when the child's context is dropped.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ChildExited {
    pub id: u64,
    pub generation: u64,
    pub reason: ExitReason,
}

/// Lets an actor report why it is about to stop.
///
/// An actor that stops with `ctx.stop()` after calling [`ExitSignal::fail`]
/// exits abnormally; without it the exit is normal.
#[derive(Clone, Debug, Default)]
pub struct ExitSignal(Arc<Mutex<Option<ExitReason>>>);

impl ExitSignal {
    /// Record an abnormal exit; call before `ctx.stop()`.
    pub fn fail(&self, reason: impl Into<String>) {
        self.set(ExitReason::Error(reason.into()));
    }

    pub(crate) fn set(&self, reason: ExitReason) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        // The first recorded reason wins: an error stays an error even if a
        // stop request arrives while the actor is already stopping.
        if slot.is_none() {
            *slot = Some(reason);
        }
    }

    fn take(&self) -> Option<ExitReason> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// What a child's factory is given each time the child is (re)started.
#[derive(Clone, Debug)]
pub struct ChildContext {
    /// The child's path in the tree, e.g. `root/database`.
    pub path: String,
    /// How the child reports an abnormal exit.
    pub exit: ExitSignal,
}

/// The address of a supervised child, kept current by its supervisor.
///
/// Clone it freely. [`ChildRef::addr`] is `None` while the child is down
/// (between a crash and its restart); [`ChildRef::ready`] waits for it.
pub struct ChildRef<A: Actor> {
    rx: watch::Receiver<Option<(u64, Addr<A>)>>,
}

impl<A: Actor> Clone for ChildRef<A> {
    fn clone(&self) -> Self {
        Self {
            rx: self.rx.clone(),
        }
    }
}

impl<A: Actor> std::fmt::Debug for ChildRef<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildRef")
            .field("generation", &self.generation())
            .finish()
    }
}

/// The child is not running (it is restarting, stopped, or its supervisor gave up).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the actor is not running")]
pub struct ChildUnavailable;

impl<A: Actor> ChildRef<A> {
    /// The live address, if the child is running.
    pub fn addr(&self) -> Option<Addr<A>> {
        self.rx
            .borrow()
            .as_ref()
            .filter(|(_, addr)| addr.connected())
            .map(|(_, addr)| addr.clone())
    }

    /// How many times the child has been started (0: never).
    pub fn generation(&self) -> u64 {
        self.rx.borrow().as_ref().map_or(0, |(g, _)| *g)
    }

    /// Wait until the child is running and return its address.
    pub async fn ready(&self) -> Result<Addr<A>, ChildUnavailable> {
        let mut rx = self.rx.clone();
        loop {
            if let Some(addr) = rx
                .borrow_and_update()
                .as_ref()
                .filter(|(_, a)| a.connected())
                .map(|(_, a)| a.clone())
            {
                return Ok(addr);
            }
            rx.changed().await.map_err(|_| ChildUnavailable)?;
        }
    }

    /// Send to the live address; fails fast while the child is down.
    pub async fn send<M>(&self, msg: M) -> Result<M::Result, ChildUnavailable>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        let addr = self.addr().ok_or(ChildUnavailable)?;
        addr.send(msg).await.map_err(|_| ChildUnavailable)
    }
}

/// What the supervisor keeps of a child it started.
pub(crate) struct Started {
    pub control: mpsc::UnboundedSender<Control>,
    pub terminated: oneshot::Receiver<()>,
}

pub(crate) struct StartArgs {
    pub id: u64,
    pub generation: u64,
    pub path: String,
    pub notify: Recipient<ChildExited>,
}

type Starter = dyn Fn(StartArgs) -> Result<Started, String> + Send + Sync;

/// How to start one child, and how its supervisor treats its exits.
///
/// A spec can be cloned; clones share the child's [`ChildRef`], so a nested
/// supervisor that is itself restarted keeps handing out the same handles.
/// Specs are `Send`, so any thread can hand one to a dynamic supervisor
/// ([`super::AddChild`]).
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) name: String,
    pub(crate) restart: Restart,
    pub(crate) shutdown_timeout: Option<Duration>,
    pub(crate) start: Arc<Starter>,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("restart", &self.restart)
            .finish()
    }
}

impl ChildSpec {
    /// A permanent child built by `factory` on every (re)start, and the handle
    /// through which everyone else reaches it.
    pub fn new<A, F>(name: impl Into<String>, factory: F) -> (Self, ChildRef<A>)
    where
        A: Actor<Context = Context<A>>,
        F: Fn(&ChildContext) -> A + Send + Sync + 'static,
    {
        let (tx, rx) = watch::channel(None);
        let slot = Arc::new(tx);
        let start = move |args: StartArgs| start_child(&factory, &slot, args);
        let spec = Self {
            name: name.into(),
            restart: Restart::Permanent,
            shutdown_timeout: None,
            start: Arc::new(start),
        };
        (spec, ChildRef { rx })
    }

    /// Set the restart policy.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Override the supervisor's shutdown timeout for this child.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// The child's name (the last part of its path).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The live address of a child with its generation; `None` while it is down.
type Slot<A> = watch::Sender<Option<(u64, Addr<A>)>>;

fn start_child<A, F>(factory: &F, slot: &Arc<Slot<A>>, args: StartArgs) -> Result<Started, String>
where
    A: Actor<Context = Context<A>>,
    F: Fn(&ChildContext) -> A,
{
    let exit = ExitSignal::default();
    let cctx = ChildContext {
        path: args.path.clone(),
        exit: exit.clone(),
    };
    // A panic in the factory is a failed start, reported to the caller.
    let actor = std::panic::catch_unwind(AssertUnwindSafe(|| factory(&cctx)))
        .map_err(|payload| panic::take_message(&*payload))?;

    let (control_tx, mut control_rx) = mpsc::unbounded_channel();
    let (terminated_tx, terminated_rx) = oneshot::channel();
    let guard = Guard {
        id: args.id,
        generation: args.generation,
        exit: exit.clone(),
        notify: args.notify,
        slot: slot.as_ref().clone(),
        terminated: Some(terminated_tx),
    };
    let addr = A::create(move |ctx| {
        ctx.spawn(actix::fut::wrap_future(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }));
        let control = async move { control_rx.recv().await };
        ctx.spawn(
            actix::fut::wrap_future::<_, A>(control).map(move |cmd, _act, ctx| match cmd {
                Some(Control::Panic(message)) => std::panic::panic_any(message),
                // A stop request, or the supervisor is gone (linked exit).
                Some(Control::Stop) | None => {
                    exit.set(ExitReason::Shutdown);
                    ctx.stop();
                }
            }),
        );
        actor
    });
    slot.send_replace(Some((args.generation, addr)));
    Ok(Started {
        control: control_tx,
        terminated: terminated_rx,
    })
}

/// Lives inside the child's context; its drop is the child's exit.
struct Guard<A: Actor> {
    id: u64,
    generation: u64,
    exit: ExitSignal,
    notify: Recipient<ChildExited>,
    slot: Slot<A>,
    terminated: Option<oneshot::Sender<()>>,
}

impl<A: Actor> Drop for Guard<A> {
    fn drop(&mut self) {
        let reason = if std::thread::panicking() {
            ExitReason::Panic(panic::take_last().unwrap_or_else(|| "unknown panic".into()))
        } else {
            self.exit.take().unwrap_or(ExitReason::Normal)
        };
        let generation = self.generation;
        // Clear the handle, unless a newer generation already replaced it.
        self.slot.send_if_modified(|cur| {
            if cur.as_ref().is_some_and(|(g, _)| *g == generation) {
                *cur = None;
                true
            } else {
                false
            }
        });
        if let Some(t) = self.terminated.take() {
            let _ = t.send(());
        }
        self.notify.do_send(ChildExited {
            id: self.id,
            generation,
            reason,
        });
    }
}
