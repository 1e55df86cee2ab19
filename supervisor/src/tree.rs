//! The supervisor actor: starts children, decides restarts, gives up.

use super::child::{ChildSpec, Control, StartArgs, Started};
use super::messages::{DynamicChildren, Intensity};
use super::spec::SupervisorSpec;
use super::{
    ExitReason, ExitSignal, Restart, RunState, Strategy, SupervisionPolicy, SupervisionRuntime,
};
use actix::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    ShuttingDown,
    Failed,
}

pub(crate) struct RunningChild {
    pub(crate) control: mpsc::UnboundedSender<Control>,
    pub(crate) terminated: Option<oneshot::Receiver<()>>,
    pub(crate) started_at: Instant,
}

pub(crate) struct Child {
    pub(crate) id: u64,
    pub(crate) spec: ChildSpec,
    pub(crate) path: String,
    pub(crate) generation: u64,
    pub(crate) running: Option<RunningChild>,
    /// Consecutive restarts, the exponent of the backoff.
    pub(crate) attempt: u32,
    /// The supervisor stopped this child itself; its exit is not a failure.
    pub(crate) expecting_exit: bool,
    /// Part of a restart that is waiting for its backoff delay.
    pub(crate) awaiting_restart: bool,
    /// The metric label of the exit that the pending restart answers.
    pub(crate) restart_reason: &'static str,
    /// Recent restarts of this child ([`Intensity::PerChild`]).
    pub(crate) restarts: VecDeque<Instant>,
    /// Removed by [`RemoveChild`]: dropped from the list once it has stopped.
    pub(crate) removing: bool,
}

impl Child {
    pub(crate) fn essential(&self) -> bool {
        self.spec.restart == Restart::Permanent
    }
}

/// An OTP-style supervisor running as an actix actor. See the module docs.
pub struct Supervisor {
    pub(crate) path: String,
    pub(crate) strategy: Strategy,
    pub(crate) policy: SupervisionPolicy,
    pub(crate) intensity: Intensity,
    pub(crate) dynamic: Option<DynamicChildren>,
    pub(crate) children: Vec<Child>,
    pub(crate) next_id: u64,
    /// When each recent restart happened, for the intensity window.
    pub(crate) restarts: VecDeque<Instant>,
    pub(crate) phase: Phase,
    pub(crate) children_stopped: bool,
    pub(crate) pending: Vec<SpawnHandle>,
    pub(crate) runtime: Arc<SupervisionRuntime>,
    /// Present when this supervisor has a parent to escalate to.
    pub(crate) exit: Option<ExitSignal>,
    pub(crate) rng: SmallRng,
}

impl Supervisor {
    pub(crate) fn new(
        spec: SupervisorSpec,
        path: String,
        runtime: Arc<SupervisionRuntime>,
        exit: Option<ExitSignal>,
    ) -> Self {
        let mut specs = spec.children;
        if let Some(dynamic) = &spec.dynamic {
            specs.extend(dynamic.lock().iter().cloned());
        }
        let mut this = Self {
            path,
            strategy: spec.strategy,
            policy: spec.policy,
            intensity: spec.intensity,
            dynamic: spec.dynamic,
            children: Vec::new(),
            next_id: 0,
            restarts: VecDeque::new(),
            phase: Phase::Running,
            children_stopped: false,
            pending: Vec::new(),
            runtime,
            exit,
            rng: SmallRng::from_rng(&mut rand::rng()),
        };
        for spec in specs {
            this.push_child(spec);
        }
        this
    }

    pub(crate) fn push_child(&mut self, spec: ChildSpec) -> usize {
        self.next_id += 1;
        self.children.push(Child {
            id: self.next_id,
            path: format!("{}/{}", self.path, spec.name),
            spec,
            generation: 0,
            running: None,
            attempt: 0,
            expecting_exit: false,
            awaiting_restart: false,
            restart_reason: "",
            restarts: VecDeque::new(),
            removing: false,
        });
        self.children.len() - 1
    }

    pub(crate) fn position(&self, id: u64) -> Option<usize> {
        self.children.iter().position(|c| c.id == id)
    }

    pub(crate) fn start_child(&mut self, idx: usize, ctx: &mut Context<Self>) {
        let child = &mut self.children[idx];
        if child.running.is_some() || child.removing {
            return;
        }
        child.generation += 1;
        let args = StartArgs {
            id: child.id,
            generation: child.generation,
            path: child.path.clone(),
            notify: ctx.address().recipient(),
        };
        match (child.spec.start)(args) {
            Ok(Started {
                control,
                terminated,
            }) => {
                self.runtime
                    .started(&child.path, child.generation, child.essential(), &control);
                child.running = Some(RunningChild {
                    control,
                    terminated: Some(terminated),
                    started_at: Instant::now(),
                });
            }
            Err(message) => {
                let generation = child.generation;
                self.on_exit(idx, generation, ExitReason::Panic(message), ctx);
            }
        }
    }

    pub(crate) fn on_exit(
        &mut self,
        idx: usize,
        generation: u64,
        reason: ExitReason,
        ctx: &mut Context<Self>,
    ) {
        let phase = self.phase;
        let child = &mut self.children[idx];
        if generation != child.generation {
            return; // a stale report from an earlier incarnation
        }
        let uptime = child.running.take().map(|r| r.started_at.elapsed());
        let expected = std::mem::take(&mut child.expecting_exit);
        let wanted = match child.spec.restart {
            Restart::Permanent => true,
            Restart::Transient => reason.is_abnormal(),
            Restart::Temporary => false,
        };
        let restart = !expected && phase == Phase::Running && wanted;
        let next = if restart || (expected && child.awaiting_restart) {
            RunState::Restarting
        } else {
            RunState::Stopped
        };
        self.runtime
            .exited(&child.path, &reason, next, child.essential());
        if child.removing {
            let path = child.path.clone();
            self.children.remove(idx);
            self.runtime.forget(&path);
            return;
        }
        if !restart {
            return;
        }
        if uptime.is_some_and(|u| u >= self.policy.reset_after) {
            child.attempt = 0;
        }
        if self.intensity == Intensity::PerChild {
            let child = &mut self.children[idx];
            if exceeds(&mut child.restarts, &self.policy) {
                let cause = format!(
                    "{} restarts within {:?}; last: {reason}",
                    child.restarts.len(),
                    self.policy.period,
                );
                self.runtime.child_gave_up(
                    &child.path,
                    self.policy.max_restarts,
                    self.policy.period,
                    &cause,
                );
                return;
            }
        } else if exceeds(&mut self.restarts, &self.policy) {
            let cause = format!(
                "{} restarts within {:?}; last: {} {}",
                self.restarts.len(),
                self.policy.period,
                self.children[idx].path,
                reason
            );
            self.give_up(cause, ctx);
            return;
        }
        let attempt = self.children[idx].attempt;
        self.children[idx].attempt += 1;
        let delay = self.policy.backoff.delay(attempt, &mut self.rng);

        let group = self.group(idx);
        for &j in &group {
            let c = &mut self.children[j];
            if j == idx {
                c.awaiting_restart = true;
                c.restart_reason = reason.label();
            } else if c.running.is_some() && c.spec.restart != Restart::Temporary {
                c.awaiting_restart = true;
                c.restart_reason = "sibling";
            }
            if c.awaiting_restart {
                self.runtime
                    .restarting(&c.path, attempt, delay, c.essential());
            }
        }
        let siblings: Vec<usize> = group
            .iter()
            .rev()
            .copied()
            .filter(|&j| j != idx && self.children[j].running.is_some())
            .collect();
        let stop = self.stop_children(&siblings);
        // Positions shift when dynamic children are removed: remember ids.
        let group: Vec<u64> = group.iter().map(|&j| self.children[j].id).collect();
        ctx.spawn(stop.map(move |(), act, ctx| {
            let handle = ctx.run_later(delay, move |act, ctx| act.restart_group(&group, ctx));
            act.pending.push(handle);
        }));
    }

    /// The children restarted together with `idx`, in start order.
    pub(crate) fn group(&self, idx: usize) -> Vec<usize> {
        match self.strategy {
            Strategy::OneForOne => vec![idx],
            Strategy::OneForAll => (0..self.children.len()).collect(),
            Strategy::RestForOne => (idx..self.children.len()).collect(),
        }
    }

    pub(crate) fn restart_group(&mut self, group: &[u64], ctx: &mut Context<Self>) {
        if self.phase != Phase::Running {
            return;
        }
        for &id in group {
            let Some(j) = self.position(id) else {
                continue; // removed meanwhile
            };
            let child = &mut self.children[j];
            if !std::mem::take(&mut child.awaiting_restart) {
                continue;
            }
            self.runtime
                .count_restart(&child.path, child.restart_reason);
            self.start_child(j, ctx);
            if self.phase != Phase::Running {
                return; // that start failed and made us give up
            }
        }
    }

    pub(crate) fn give_up(&mut self, cause: String, ctx: &mut Context<Self>) {
        self.phase = Phase::Failed;
        self.cancel_pending(ctx);
        let root = self.exit.is_none();
        self.runtime.gave_up(
            &self.path,
            self.policy.max_restarts,
            self.policy.period,
            &cause,
            root,
        );
        let all: Vec<usize> = (0..self.children.len()).rev().collect();
        for c in &mut self.children {
            c.awaiting_restart = false;
        }
        let stop = self.stop_children(&all);
        ctx.spawn(stop.map(move |(), act, ctx| {
            act.children_stopped = true;
            if let Some(exit) = &act.exit {
                exit.fail(cause);
                ctx.stop();
            }
        }));
    }

    pub(crate) fn cancel_pending(&mut self, ctx: &mut Context<Self>) {
        for handle in self.pending.drain(..) {
            ctx.cancel_future(handle);
        }
    }

    /// Stop the given children one after another, each within its timeout.
    pub(crate) fn stop_children(
        &mut self,
        indices: &[usize],
    ) -> impl ActorFuture<Self, Output = ()> + use<> {
        let mut stops = Vec::new();
        for &i in indices {
            let child = &mut self.children[i];
            if let Some(running) = child.running.as_mut() {
                child.expecting_exit = true;
                let timeout = child
                    .spec
                    .shutdown_timeout
                    .unwrap_or(self.policy.shutdown_timeout);
                stops.push((
                    child.path.clone(),
                    running.control.clone(),
                    running.terminated.take(),
                    timeout,
                ));
            }
        }
        actix::fut::wrap_future(async move {
            // Polled while the runtime itself is being dropped (an actor
            // system torn down without a shutdown): there is no timer to
            // wait with, and the children go with the runtime anyway.
            let waiting = tokio::runtime::Handle::try_current().is_ok();
            for (path, control, terminated, timeout) in stops {
                if control.send(Control::Stop).is_err() || !waiting {
                    continue; // already gone
                }
                if let Some(terminated) = terminated
                    && tokio::time::timeout(timeout, terminated).await.is_err()
                {
                    tracing::warn!(
                            actor = %path,
                            timeout_ms = timeout.as_millis() as u64,
                        "actor did not stop within its shutdown timeout; moving on"
                    );
                }
            }
        })
    }

    pub(crate) fn begin_shutdown(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> impl ActorFuture<Self, Output = ()> + use<> {
        if self.phase == Phase::Running {
            self.phase = Phase::ShuttingDown;
        }
        self.cancel_pending(ctx);
        let all: Vec<usize> = (0..self.children.len()).rev().collect();
        self.stop_children(&all)
            .map(|(), act, _| act.children_stopped = true)
    }
}

/// Records a restart in `window`; true when that is one too many for the period.
fn exceeds(window: &mut VecDeque<Instant>, policy: &SupervisionPolicy) -> bool {
    let now = Instant::now();
    while window
        .front()
        .is_some_and(|&t| now.duration_since(t) > policy.period)
    {
        window.pop_front();
    }
    window.push_back(now);
    window.len() > policy.max_restarts as usize
}
