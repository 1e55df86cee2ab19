//! Liveness and readiness: the two yes-or-no questions load balancers and
//! orchestrators ask, apart from the diagnostic `/health` (which says how
//! well the service does, and is 503 for a slow Telegram DC: no reason to
//! restart the process or take it out of rotation).
//!
//! - **Live** (`GET /health/live`): the process and its actor system
//!   answer. Not live once the root supervisor gave up (nothing restarts
//!   any more), or when the root supervisor does not answer a message
//!   within `health.check_timeout_ms` (its arbiter is wedged). Nothing
//!   else: a database outage is no reason to restart the process. An
//!   orchestrator restarts what is not live.
//! - **Ready** (`GET /health/ready`): live, and able to serve traffic: not
//!   shutting down, every essential actor (a direct child of the root,
//!   restarted whatever its exit) running, the database answering a ping
//!   within `health.check_timeout_ms`. A balancer sends traffic only to
//!   what is ready. On SIGTERM readiness turns 503 at once and stays so for
//!   `health.drain_ms` while everything still serves, then the shutdown
//!   proceeds.

use super::handle::Health;
use crate::supervisor::{Ping, RunState};
use actix::Recipient;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A probe's answer: whether it passes, and why not.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    /// `live` / `not_live`, or `ready` / `not_ready`.
    pub status: &'static str,
    /// One line per condition that failed (empty when the probe passes).
    pub reasons: Vec<String>,
}

impl Probe {
    fn of(reasons: Vec<String>, pass: &'static str, fail: &'static str) -> Self {
        Self {
            status: if reasons.is_empty() { pass } else { fail },
            reasons,
        }
    }

    /// Whether the probe passes.
    pub fn passes(&self) -> bool {
        self.reasons.is_empty()
    }
}

impl Health {
    /// The root supervisor, asked by the liveness probe (set once it runs).
    pub fn watch_root(&self, root: Recipient<Ping>) {
        let _ = self.inner.root.set(root);
    }

    /// The shutdown began: not ready from now on.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    fn probe_timeout(&self) -> Duration {
        self.inner.settings.health.check_timeout_ms
    }

    /// Why the process is not live (empty: it is).
    async fn not_live(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(failure) = self.inner.supervision.root_failure() {
            reasons.push(format!("supervision gave up: {failure}"));
            return reasons;
        }
        let timeout = self.probe_timeout();
        let answered = match self.inner.root.get() {
            Some(root) => tokio::time::timeout(timeout, root.send(Ping))
                .await
                .is_ok_and(|r| r.is_ok()),
            // Before the tree runs, the process is starting: it answers.
            None => true,
        };
        if !answered {
            reasons.push(format!(
                "the actor system did not answer within {} ms",
                timeout.as_millis()
            ));
        }
        reasons
    }

    /// `GET /health/live`.
    pub async fn live(&self) -> Probe {
        Probe::of(self.not_live().await, "live", "not_live")
    }

    /// `GET /health/ready`.
    pub async fn ready(&self) -> Probe {
        let inner = &self.inner;
        let mut reasons = Vec::new();
        if inner.shutting_down.load(Ordering::SeqCst) {
            reasons.push("shutting down".to_owned());
        }
        let ping = async {
            let timeout = self.probe_timeout();
            match tokio::time::timeout(timeout, inner.db.ping()).await {
                Ok(Ok(())) => None,
                Ok(Err(_)) => Some("the database did not answer".to_owned()),
                Err(_) => Some(format!(
                    "the database did not answer within {} ms",
                    timeout.as_millis()
                )),
            }
        };
        let (not_live, db) = futures_util::join!(self.not_live(), ping);
        reasons.extend(not_live);
        reasons.extend(db);
        for (path, actor) in inner.supervision.snapshot() {
            let root_child = path.matches('/').count() == 1;
            if root_child && actor.essential && actor.state != RunState::Running {
                reasons.push(format!("{path} is not running"));
            }
        }
        Probe::of(reasons, "ready", "not_ready")
    }
}
