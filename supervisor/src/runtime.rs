//! What the supervisors of one service share: metrics, the event stream, the
//! status of every actor in the tree, and the fault-injection switchboard.

use super::child::Control;
use chrono::{DateTime, Utc};
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Where an actor is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Running normally.
    Running,
    /// Down, waiting for its backoff delay before a restart.
    Restarting,
    /// Stopped and not to be restarted (normal exit, shutdown, temporary child).
    Stopped,
    /// A supervisor that gave up after too many restarts.
    Failed,
}

/// One row of the supervision tree, as `/health` and the debug routes show it.
#[derive(Clone, Debug, Serialize)]
pub struct ActorStatus {
    pub state: RunState,
    /// Restarts since the service started.
    pub restarts: u64,
    /// The last exit, e.g. `panic: index out of bounds`.
    pub last_exit: Option<String>,
    /// When the actor entered its current state.
    pub since: DateTime<Utc>,
    /// Whether the supervisor needs this actor up for the service to be healthy.
    pub essential: bool,
}

/// What happened in the tree; later forwarded to WebSocket clients and alerts.
#[derive(Clone, Debug, Serialize)]
pub struct SupervisionEvent {
    pub at: DateTime<Utc>,
    /// The actor's path, e.g. `root/database`.
    pub actor: String,
    #[serde(flatten)]
    pub kind: SupervisionEventKind,
}

/// The kinds of [`SupervisionEvent`].
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SupervisionEventKind {
    Started {
        generation: u64,
    },
    Exited {
        reason: String,
        abnormal: bool,
    },
    Restarting {
        attempt: u32,
        delay_ms: u64,
    },
    GaveUp {
        restarts: u32,
        period_ms: u64,
        cause: String,
    },
}

/// Why a child is restarted (the `reason` label of
/// `tgvisor_actor_restarts_total`): the label of its own exit (see
/// [`super::ExitReason::label`]; a shutdown never restarts), or `sibling`
/// when another child's exit restarts it with its group.
const RESTART_REASONS: [&str; 4] = ["normal", "error", "panic", "sibling"];

/// Shared by every supervisor of one service instance (no globals: tests run
/// many instances in one process).
pub struct SupervisionRuntime {
    restarts: IntCounterVec,
    up: IntGaugeVec,
    root_failed: IntGauge,
    events: broadcast::Sender<SupervisionEvent>,
    tree: RwLock<BTreeMap<String, ActorStatus>>,
    controls: Mutex<HashMap<String, mpsc::WeakUnboundedSender<Control>>>,
    root_failure: RwLock<Option<String>>,
}

impl std::fmt::Debug for SupervisionRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisionRuntime").finish_non_exhaustive()
    }
}

impl SupervisionRuntime {
    /// Create the runtime and register its metric families in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let restarts = IntCounterVec::new(
            Opts::new(
                "tgvisor_actor_restarts_total",
                "Restarts of supervised actors, by actor path and the exit reason that caused them.",
            ),
            &["actor", "reason"],
        )?;
        let up = IntGaugeVec::new(
            Opts::new(
                "tgvisor_actor_up",
                "1 while a supervised actor is running, 0 otherwise.",
            ),
            &["actor"],
        )?;
        let root_failed = IntGauge::new(
            "tgvisor_supervision_failed",
            "1 once the root supervisor has given up after too many restarts.",
        )?;
        registry.register(Box::new(restarts.clone()))?;
        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(root_failed.clone()))?;
        Ok(Self {
            restarts,
            up,
            root_failed,
            events: broadcast::channel(1024).0,
            tree: RwLock::default(),
            controls: Mutex::default(),
            root_failure: RwLock::default(),
        })
    }

    /// A runtime with a private registry (tests, tools).
    pub fn standalone() -> Self {
        // unwrap: registering fresh families in a fresh registry cannot collide.
        Self::new(&Registry::new()).unwrap()
    }

    /// Follow supervision events (lagging receivers lose the oldest).
    pub fn subscribe(&self) -> broadcast::Receiver<SupervisionEvent> {
        self.events.subscribe()
    }

    /// Every actor in the tree by path.
    pub fn snapshot(&self) -> BTreeMap<String, ActorStatus> {
        self.tree
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One actor's status.
    pub fn status(&self, path: &str) -> Option<ActorStatus> {
        self.tree
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .cloned()
    }

    /// Why the root supervisor gave up, if it did.
    pub fn root_failure(&self) -> Option<String> {
        self.root_failure
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Make the actor at `path` panic from inside its own context.
    /// Returns false when no such actor is running.
    pub fn inject_panic(&self, path: &str, message: &str) -> bool {
        let sender = self
            .controls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .and_then(mpsc::WeakUnboundedSender::upgrade);
        sender.is_some_and(|s| s.send(Control::Panic(message.to_owned())).is_ok())
    }

    pub(crate) fn started(
        &self,
        path: &str,
        generation: u64,
        essential: bool,
        control: &mpsc::UnboundedSender<Control>,
    ) {
        self.controls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_owned(), control.downgrade());
        self.up.with_label_values(&[path]).set(1);
        // The actor's restart series start at zero, so its first restart
        // counts in increase() (a restart-storm alert would miss it).
        for reason in RESTART_REASONS {
            self.restarts.with_label_values(&[path, reason]);
        }
        self.set_state(path, RunState::Running, None, essential);
        tracing::info!(actor = path, generation, "actor started");
        self.emit(path, SupervisionEventKind::Started { generation });
    }

    pub(crate) fn root_started(&self, path: &str) {
        self.set_state(path, RunState::Running, None, true);
    }

    pub(crate) fn exited(
        &self,
        path: &str,
        reason: &super::ExitReason,
        next: RunState,
        essential: bool,
    ) {
        self.up.with_label_values(&[path]).set(0);
        self.set_state(path, next, Some(reason.to_string()), essential);
        if reason.is_abnormal() {
            tracing::warn!(actor = path, reason = %reason, "actor exited abnormally");
        } else {
            tracing::info!(actor = path, reason = %reason, "actor exited");
        }
        self.emit(
            path,
            SupervisionEventKind::Exited {
                reason: reason.to_string(),
                abnormal: reason.is_abnormal(),
            },
        );
    }

    pub(crate) fn restarting(&self, path: &str, attempt: u32, delay: Duration, essential: bool) {
        self.set_state(path, RunState::Restarting, None, essential);
        tracing::warn!(
            actor = path,
            attempt,
            delay_ms = delay.as_millis() as u64,
            "restarting actor after backoff"
        );
        self.emit(
            path,
            SupervisionEventKind::Restarting {
                attempt,
                delay_ms: delay.as_millis() as u64,
            },
        );
    }

    pub(crate) fn count_restart(&self, path: &str, reason: &str) {
        self.restarts.with_label_values(&[path, reason]).inc();
        let mut tree = self.tree.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = tree.get_mut(path) {
            s.restarts += 1;
        }
    }

    pub(crate) fn gave_up(
        &self,
        path: &str,
        restarts: u32,
        period: Duration,
        cause: &str,
        root: bool,
    ) {
        self.set_state(path, RunState::Failed, Some(cause.to_owned()), true);
        tracing::error!(
            actor = path,
            restarts,
            cause,
            "supervisor gave up: restart intensity exceeded"
        );
        if root {
            self.root_failed.set(1);
            *self
                .root_failure
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some(format!("{path}: {cause}"));
        }
        self.emit(
            path,
            SupervisionEventKind::GaveUp {
                restarts,
                period_ms: period.as_millis() as u64,
                cause: cause.to_owned(),
            },
        );
    }

    /// A child given up alone ([`super::Intensity::PerChild`]): it stays down,
    /// its siblings and its supervisor carry on.
    pub(crate) fn child_gave_up(&self, path: &str, restarts: u32, period: Duration, cause: &str) {
        self.set_state(path, RunState::Failed, Some(cause.to_owned()), false);
        tracing::error!(
            actor = path,
            restarts,
            cause,
            "actor given up: restart intensity exceeded"
        );
        self.emit(
            path,
            SupervisionEventKind::GaveUp {
                restarts,
                period_ms: period.as_millis() as u64,
                cause: cause.to_owned(),
            },
        );
    }

    /// A dynamic child was removed: drop its status and its metric series,
    /// so removed children do not accumulate.
    pub(crate) fn forget(&self, path: &str) {
        self.tree
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(path);
        self.controls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(path);
        let _ = self.up.remove_label_values(&[path]);
        for reason in ["normal", "shutdown", "error", "panic", "sibling"] {
            let _ = self.restarts.remove_label_values(&[path, reason]);
        }
    }

    fn set_state(&self, path: &str, state: RunState, last_exit: Option<String>, essential: bool) {
        let mut tree = self.tree.write().unwrap_or_else(PoisonError::into_inner);
        let entry = tree.entry(path.to_owned()).or_insert_with(|| ActorStatus {
            state,
            restarts: 0,
            last_exit: None,
            since: Utc::now(),
            essential,
        });
        if entry.state != state {
            entry.since = Utc::now();
        }
        entry.state = state;
        entry.essential = essential;
        if let Some(e) = last_exit {
            entry.last_exit = Some(e);
        }
    }

    fn emit(&self, path: &str, kind: SupervisionEventKind) {
        let _ = self.events.send(SupervisionEvent {
            at: Utc::now(),
            actor: path.to_owned(),
            kind,
        });
    }
}
