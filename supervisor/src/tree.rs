//! The supervisor actor: starts children, decides restarts, gives up.

use super::child::{ChildExited, ChildRef, ChildSpec, Control, StartArgs, Started};
use super::{
    ExitReason, ExitSignal, Restart, RunState, Strategy, SupervisionPolicy, SupervisionRuntime,
};
use actix::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How long a parent waits for a nested supervisor to stop its subtree.
const SUPERVISOR_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Stop every child in reverse start order (each within its shutdown
/// timeout) and answer once they are down. Used for graceful shutdown.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopTree;

/// Answered at once: the supervisor's arbiter is running (liveness).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Ping;

/// Make the actor at `path` panic from inside (fault injection for tests and
/// the development-only debug route).
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct InjectPanic {
    pub path: String,
    pub message: String,
}

/// Start a child under a dynamic supervisor (OTP's `start_child`). The spec
/// is remembered: if the supervisor itself is restarted, its new incarnation
/// starts the child again.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), AddChildError>")]
pub struct AddChild(pub ChildSpec);

/// Why [`AddChild`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddChildError {
    #[error("a child with this name is already supervised")]
    Exists,
    #[error("this supervisor takes no dynamic children")]
    NotDynamic,
}

/// Stop a dynamic child and forget it (OTP's `terminate_child` followed by
/// `delete_child`). Answers false when there was no such child.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct RemoveChild(pub String);

/// The children a dynamic supervisor has been given, shared by all its
/// incarnations and by whoever adds children.
#[derive(Clone, Debug, Default)]
pub struct DynamicChildren(Arc<Mutex<Vec<ChildSpec>>>);

impl DynamicChildren {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ChildSpec>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Names of the children, in the order they were added.
    pub fn names(&self) -> Vec<String> {
        self.lock().iter().map(|c| c.name.clone()).collect()
    }
}

/// Where restart intensity is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intensity {
    /// Over the whole supervisor: too many restarts make it give up and
    /// escalate (OTP's rule; right for a fixed set of essential children).
    Supervisor,
    /// Per child: a child restarting too often is given up alone (its state
    /// becomes `failed`) while its siblings keep running. For dynamic
    /// supervisors of independent workers, such as one actor per account,
    /// where one bad account must not take the others down.
    PerChild,
}

/// Everything needed to start a supervisor, as root or as a child.
#[derive(Clone, Debug)]
pub struct SupervisorSpec {
    name: String,
    strategy: Strategy,
    policy: SupervisionPolicy,
    intensity: Intensity,
    children: Vec<ChildSpec>,
    dynamic: Option<DynamicChildren>,
}

impl SupervisorSpec {
    /// A one_for_one supervisor with the default policy and no children.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            strategy: Strategy::OneForOne,
            policy: SupervisionPolicy::default(),
            intensity: Intensity::Supervisor,
            children: Vec::new(),
            dynamic: None,
        }
    }

    /// Accept children at run time ([`AddChild`], [`RemoveChild`]); they are
    /// started after the static ones. Returns the shared list.
    pub fn dynamic(mut self) -> (Self, DynamicChildren) {
        let list = DynamicChildren::default();
        self.dynamic = Some(list.clone());
        (self, list)
    }

    pub fn intensity(mut self, intensity: Intensity) -> Self {
        self.intensity = intensity;
        self
    }

    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    pub fn policy(mut self, policy: SupervisionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Add a child; children start in the order they are added.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec);
        self
    }

    /// Start as the root of a tree. When a root gives up it stays alive, stops
    /// its children and records the failure in the runtime (the service then
    /// reports unhealthy).
    pub fn start_root(self, runtime: Arc<SupervisionRuntime>) -> Addr<Supervisor> {
        super::install_panic_hook();
        let path = self.name.clone();
        Supervisor::new(self, path, runtime, None).start()
    }

    /// Run this supervisor as a child of another: when it gives up it exits
    /// abnormally and its parent's policy applies.
    pub fn into_child(self, runtime: Arc<SupervisionRuntime>) -> (ChildSpec, ChildRef<Supervisor>) {
        let name = self.name.clone();
        let (spec, child) = ChildSpec::new(name, move |cctx| {
            Supervisor::new(
                self.clone(),
                cctx.path.clone(),
                runtime.clone(),
                Some(cctx.exit.clone()),
            )
        });
        (spec.shutdown_timeout(SUPERVISOR_SHUTDOWN_TIMEOUT), child)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    ShuttingDown,
    Failed,
}

struct RunningChild {
    control: mpsc::UnboundedSender<Control>,
    terminated: Option<oneshot::Receiver<()>>,
    started_at: Instant,
}

struct Child {
    id: u64,
    spec: ChildSpec,
    path: String,
    generation: u64,
    running: Option<RunningChild>,
    /// Consecutive restarts, the exponent of the backoff.
    attempt: u32,
    /// The supervisor stopped this child itself; its exit is not a failure.
    expecting_exit: bool,
    /// Part of a restart that is waiting for its backoff delay.
    awaiting_restart: bool,
    /// The metric label of the exit that the pending restart answers.
    restart_reason: &'static str,
    /// Recent restarts of this child ([`Intensity::PerChild`]).
    restarts: VecDeque<Instant>,
    /// Removed by [`RemoveChild`]: dropped from the list once it has stopped.
    removing: bool,
}

impl Child {
    fn essential(&self) -> bool {
        self.spec.restart == Restart::Permanent
    }
}

/// An OTP-style supervisor running as an actix actor. See the module docs.
pub struct Supervisor {
    path: String,
    strategy: Strategy,
    policy: SupervisionPolicy,
    intensity: Intensity,
    dynamic: Option<DynamicChildren>,
    children: Vec<Child>,
    next_id: u64,
    /// When each recent restart happened, for the intensity window.
    restarts: VecDeque<Instant>,
    phase: Phase,
    children_stopped: bool,
    pending: Vec<SpawnHandle>,
    runtime: Arc<SupervisionRuntime>,
    /// Present when this supervisor has a parent to escalate to.
    exit: Option<ExitSignal>,
    rng: SmallRng,
}

impl Supervisor {
    fn new(
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

    fn push_child(&mut self, spec: ChildSpec) -> usize {
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

    fn position(&self, id: u64) -> Option<usize> {
        self.children.iter().position(|c| c.id == id)
    }

    fn start_child(&mut self, idx: usize, ctx: &mut Context<Self>) {
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

    fn on_exit(
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
    fn group(&self, idx: usize) -> Vec<usize> {
        match self.strategy {
            Strategy::OneForOne => vec![idx],
            Strategy::OneForAll => (0..self.children.len()).collect(),
            Strategy::RestForOne => (idx..self.children.len()).collect(),
        }
    }

    fn restart_group(&mut self, group: &[u64], ctx: &mut Context<Self>) {
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

    fn give_up(&mut self, cause: String, ctx: &mut Context<Self>) {
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

    fn cancel_pending(&mut self, ctx: &mut Context<Self>) {
        for handle in self.pending.drain(..) {
            ctx.cancel_future(handle);
        }
    }

    /// Stop the given children one after another, each within its timeout.
    fn stop_children(&mut self, indices: &[usize]) -> impl ActorFuture<Self, Output = ()> + use<> {
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

    fn begin_shutdown(
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

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.exit.is_none() {
            self.runtime.root_started(&self.path);
        }
        for idx in 0..self.children.len() {
            self.start_child(idx, ctx);
            if self.phase != Phase::Running {
                break;
            }
        }
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        if self.children_stopped || self.children.iter().all(|c| c.running.is_none()) {
            return Running::Stop;
        }
        if self.phase != Phase::ShuttingDown {
            let stop = self.begin_shutdown(ctx);
            ctx.spawn(stop.map(|(), _, ctx| ctx.stop()));
        }
        Running::Continue
    }
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        if let Some(idx) = self.position(msg.id) {
            self.on_exit(idx, msg.generation, msg.reason, ctx);
        }
    }
}

impl Handler<StopTree> for Supervisor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: StopTree, ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(self.begin_shutdown(ctx))
    }
}

impl Handler<Ping> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}

impl Handler<InjectPanic> for Supervisor {
    type Result = bool;

    fn handle(&mut self, msg: InjectPanic, _: &mut Context<Self>) -> bool {
        self.runtime.inject_panic(&msg.path, &msg.message)
    }
}

impl Handler<AddChild> for Supervisor {
    type Result = Result<(), AddChildError>;

    fn handle(&mut self, AddChild(spec): AddChild, ctx: &mut Context<Self>) -> Self::Result {
        let dynamic = self.dynamic.as_ref().ok_or(AddChildError::NotDynamic)?;
        {
            let mut list = dynamic.lock();
            if list.iter().any(|c| c.name == spec.name) {
                return Err(AddChildError::Exists);
            }
            list.push(spec.clone());
        }
        // A child being removed under the same name is still stopping; the
        // new one gets its own entry and starts at once (the old one's exit
        // is matched by id, not by name).
        let idx = self.push_child(spec);
        if self.phase == Phase::Running {
            self.start_child(idx, ctx);
        }
        Ok(())
    }
}

impl Handler<RemoveChild> for Supervisor {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, RemoveChild(name): RemoveChild, _: &mut Context<Self>) -> Self::Result {
        if let Some(dynamic) = &self.dynamic {
            dynamic.lock().retain(|c| c.name != name);
        }
        let Some(idx) = self
            .children
            .iter()
            .position(|c| c.spec.name == name && !c.removing)
        else {
            return Box::pin(actix::fut::ready(false));
        };
        let child = &mut self.children[idx];
        child.removing = true;
        child.awaiting_restart = false;
        if child.running.is_none() {
            let path = child.path.clone();
            self.children.remove(idx);
            self.runtime.forget(&path);
            return Box::pin(actix::fut::ready(true));
        }
        // Its exit report removes the entry (see on_exit).
        Box::pin(self.stop_children(&[idx]).map(|(), _, _| true))
    }
}
