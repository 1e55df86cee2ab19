//! The router's state ([`Core`]) and its loop: apply what is queued,
//! notify what is due, write what changed, sleep until the next thing.

use super::clock::Clock;
use super::entry::{Entry, Outbox};
use crate::alerts::channels::Channels;
use crate::alerts::{AlertMetrics, AlertRouterHandle, Op, Severity};
use crate::config::Alerting;
use chrono::Utc;
use sea_orm::DatabaseConnection;
use std::collections::HashMap;
use std::time::Duration;

/// After a database error, the loop waits this long before trying again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

/// What the router keeps between passes.
pub(super) struct Core {
    pub(super) handle: AlertRouterHandle,
    pub(super) config: Alerting,
    pub(super) channels: Channels,
    pub(super) metrics: AlertMetrics,
    pub(super) db: DatabaseConnection,
    /// What is not resolved (or resolved and not yet written), by
    /// fingerprint.
    pub(super) alerts: HashMap<String, Entry>,
    /// Resolved alerts whose resolution is not written yet.
    pub(super) unwritten: Vec<Entry>,
    /// The last time Alertmanager was told what still fires.
    pub(super) alertmanager_posted: tokio::time::Instant,
    /// The stored alerts were read at start.
    pub(super) loaded: bool,
    /// The last write reached the database (a failure is logged once per
    /// outage, not once per try).
    pub(super) db_ok: bool,
    pub(super) clock: Clock,
}

impl Core {
    pub(super) fn new(
        handle: AlertRouterHandle,
        config: Alerting,
        channels: Channels,
        metrics: AlertMetrics,
        db: DatabaseConnection,
    ) -> Self {
        Self {
            handle,
            config,
            channels,
            metrics,
            db,
            alerts: HashMap::new(),
            unwritten: Vec::new(),
            alertmanager_posted: tokio::time::Instant::now(),
            loaded: false,
            db_ok: true,
            clock: Clock::new(),
        }
    }

    pub(super) async fn run(mut self) {
        loop {
            if !self.loaded {
                self.load().await;
            }
            let mut out = Outbox::new();
            while let Some(op) = self.handle.pop() {
                self.apply(op, &mut out).await;
            }
            self.due(&mut out).await;
            self.refresh_alertmanager(&mut out);
            self.flush().await;
            self.send(out);
            self.count();
            let next = self
                .alerts
                .values()
                .filter(|e| e.m.status == "firing")
                .filter_map(|e| e.m.next_notify_at)
                .min();
            let mut wait = next.map(|n| {
                (n.with_timezone(&Utc) - self.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            });
            if self.in_alertmanager().next().is_some() {
                let refresh = self
                    .alertmanager_refresh()
                    .saturating_sub(self.alertmanager_posted.elapsed());
                wait = Some(wait.map_or(refresh, |w| w.min(refresh)));
            }
            // Writes or the first read still owed: try again shortly.
            if !self.loaded || !self.unwritten.is_empty() || self.alerts.values().any(|e| e.dirty) {
                wait = Some(wait.map_or(RETRY_AFTER_ERROR, |w| w.min(RETRY_AFTER_ERROR)));
            }
            tokio::select! {
                () = self.handle.shared.wake.notified() => {}
                () = tokio::time::sleep(wait.unwrap_or(Duration::MAX)), if wait.is_some() => {}
            }
        }
    }

    fn count(&self) {
        for s in [Severity::High, Severity::Medium, Severity::Low] {
            let n = self
                .alerts
                .values()
                .filter(|e| e.m.status != "resolved" && e.m.severity == s.as_str())
                .count();
            self.metrics
                .firing
                .with_label_values(&[s.as_str()])
                .set(n as i64);
        }
    }

    async fn apply(&mut self, op: Op, out: &mut Outbox) {
        match op {
            Op::Raise(new) => self.raise(&new).await,
            Op::Resolve(fp) => self.resolve(&fp, out).await,
            Op::Ack { id, by, reply } => {
                let _ = reply.send(self.ack(id, by).await);
            }
        }
    }
}
