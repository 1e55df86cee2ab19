//! OTP-style supervision on actix actors.
//!
//! actix restarts a `Supervised` actor only when it stops, catches no panic,
//! has no backoff and no restart limit. This module owns what tgvisor
//! promises instead:
//!
//! - a restart policy per child ([`Restart`]): permanent, transient, temporary;
//! - a strategy per supervisor ([`Strategy`]): one_for_one, one_for_all,
//!   rest_for_one;
//! - restart intensity: more than `max_restarts` restarts within `period`
//!   stops the supervisor, which escalates to its parent (at the root the
//!   service is marked unhealthy and keeps serving `/health` and `/metrics`);
//! - exponential backoff with jitter between restarts, reset once a child has
//!   stayed up for `reset_after`;
//! - a panic inside a child counts as an abnormal exit;
//! - callers resolve children through a [`ChildRef`], which the supervisor
//!   keeps pointing at the live address, so nobody holds a dead `Addr`;
//! - every start, exit, restart and give-up is a log line, a metric and a
//!   [`SupervisionEvent`].
//!
//! How a child is watched: the supervisor creates each child's context itself
//! and spawns two futures into it. A *guard* future never completes; it is
//! dropped with the context, and its `Drop` reports the exit (a panic drops the
//! context while unwinding, so `std::thread::panicking()` tells the two apart).
//! A *control* future waits for [`Control`] commands: stop, or panic (fault
//! injection that fails the actor from inside, like a handler panic would).
//!
//! Long-lived loops that answer no messages are children too:
//! [`ChildSpec::task`] runs a future inside a small actor, and a
//! [`Handover`] carries what must outlive a restart (a queue's receiver).

mod backoff;
mod child;
mod handlers;
mod messages;
mod panic;
mod runtime;
mod spec;
mod task;
#[cfg(test)]
mod task_tests;
#[cfg(test)]
mod tests;
mod tree;

pub use backoff::Backoff;
pub use child::{ChildContext, ChildRef, ChildSpec, ChildUnavailable, ExitSignal};
pub use messages::{
    AddChild, AddChildError, DynamicChildren, InjectPanic, Intensity, Ping, RemoveChild, StopTree,
};
pub use panic::install_panic_hook;
pub use runtime::{
    ActorStatus, RunState, SupervisionEvent, SupervisionEventKind, SupervisionRuntime,
};
pub use spec::SupervisorSpec;
pub use task::{Handover, Lease, StopRequest, TaskActor, TaskResult};
pub use tree::Supervisor;

use std::time::Duration;

/// When a child that has exited is started again (OTP's restart types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always restarted, whatever the exit reason.
    Permanent,
    /// Restarted only after an abnormal exit (an error or a panic).
    Transient,
    /// Never restarted.
    Temporary,
}

/// Which children are restarted when one of them has to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Only the child that exited.
    OneForOne,
    /// Every child: the others are stopped (in reverse start order) and all
    /// are started again in start order.
    OneForAll,
    /// The child that exited and every child started after it.
    RestForOne,
}

/// Why a child stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// The actor stopped itself without reporting an error.
    Normal,
    /// Its supervisor asked it to stop.
    Shutdown,
    /// The actor reported an error through its [`ExitSignal`] and stopped.
    Error(String),
    /// A panic unwound through the actor.
    Panic(String),
}

impl ExitReason {
    /// Errors and panics are abnormal; they restart transient children.
    pub fn is_abnormal(&self) -> bool {
        matches!(self, ExitReason::Error(_) | ExitReason::Panic(_))
    }

    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ExitReason::Normal => "normal",
            ExitReason::Shutdown => "shutdown",
            ExitReason::Error(_) => "error",
            ExitReason::Panic(_) => "panic",
        }
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::Error(e) => write!(f, "error: {e}"),
            ExitReason::Panic(p) => write!(f, "panic: {p}"),
        }
    }
}

/// Restart intensity, backoff and shutdown timing of one supervisor.
#[derive(Clone, Debug)]
pub struct SupervisionPolicy {
    /// More than this many restarts within `period` makes the supervisor give up.
    pub max_restarts: u32,
    /// The sliding window for `max_restarts`.
    pub period: Duration,
    /// Delay before each restart.
    pub backoff: Backoff,
    /// A child that stayed up this long starts its backoff from the base again.
    pub reset_after: Duration,
    /// How long a child may take to stop before the supervisor moves on.
    pub shutdown_timeout: Duration,
}

impl Default for SupervisionPolicy {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            period: Duration::from_secs(30),
            backoff: Backoff::default(),
            reset_after: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}
