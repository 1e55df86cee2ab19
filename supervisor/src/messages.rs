//! What a supervisor is told: stop the tree, ping, inject a panic, add or
//! remove a dynamic child; and how it counts restart intensity.

use super::child::ChildSpec;
use actix::prelude::*;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long a parent waits for a nested supervisor to stop its subtree.
pub(crate) const SUPERVISOR_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

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
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ChildSpec>> {
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
