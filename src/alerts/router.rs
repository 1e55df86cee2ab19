//! The AlertRouter actor: one loop that applies the queued raises,
//! resolutions and acknowledgements in order, sends what is due, and
//! sleeps until the next thing is.

use super::channels::{Channels, Kind, Notification};
use super::schedule::{self, Position};
use super::{AlertError, AlertMetrics, AlertRouterHandle, AlertView, NewAlert, Op, Severity};
use crate::config::Alerting;
use crate::entities::alert;
use actix::prelude::*;
use chrono::{DateTime, FixedOffset, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// After a database error, the loop waits this long before trying again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

pub struct AlertRouter {
    handle: AlertRouterHandle,
    config: Alerting,
    channels: Channels,
    metrics: AlertMetrics,
    db: DatabaseConnection,
}

impl AlertRouter {
    pub fn new(
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
        }
    }
}

impl Actor for AlertRouter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let core = Core {
            handle: self.handle.clone(),
            config: self.config.clone(),
            channels: self.channels.clone(),
            metrics: self.metrics.clone(),
            db: self.db.clone(),
            alerts: HashMap::new(),
            clock: Clock::new(),
        };
        ctx.spawn(core.run().into_actor(self));
    }
}

/// Wall time that advances with tokio's clock (so paused-time tests move
/// it), anchored at the router's start.
struct Clock {
    wall: DateTime<Utc>,
    mono: tokio::time::Instant,
}

impl Clock {
    fn new() -> Self {
        Self {
            wall: Utc::now(),
            mono: tokio::time::Instant::now(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.wall + chrono::Duration::from_std(self.mono.elapsed()).unwrap_or_default()
    }
}

fn stamp(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.fixed_offset()
}

struct Core {
    handle: AlertRouterHandle,
    config: Alerting,
    channels: Channels,
    metrics: AlertMetrics,
    db: DatabaseConnection,
    /// What is not resolved, by fingerprint.
    alerts: HashMap<String, alert::Model>,
    clock: Clock,
}

/// Notifications gathered in one pass: per (kind, channel), the alerts.
type Outbox = BTreeMap<(u8, String), (Kind, Vec<AlertView>)>;

fn add(out: &mut Outbox, kind: Kind, channels: &[String], view: &AlertView) {
    for c in channels {
        out.entry((kind as u8, c.clone()))
            .or_insert_with(|| (kind, Vec::new()))
            .1
            .push(view.clone());
    }
}

impl Core {
    async fn run(mut self) {
        loop {
            match self.load().await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "alert router: loading alerts failed; trying again");
                    tokio::time::sleep(RETRY_AFTER_ERROR).await;
                }
            }
        }
        loop {
            let mut out = Outbox::new();
            let mut failed = false;
            while let Some(op) = self.handle.pop() {
                if let Err(op) = self.apply(op, &mut out).await {
                    self.handle.push_front(*op);
                    failed = true;
                    break;
                }
            }
            if !failed && let Err(e) = self.due(&mut out).await {
                tracing::warn!(error = %e, "alert router: recording a notification failed");
                failed = true;
            }
            self.send(out);
            self.count();
            if failed {
                tokio::time::sleep(RETRY_AFTER_ERROR).await;
                continue;
            }
            let next = self
                .alerts
                .values()
                .filter(|a| a.status == "firing")
                .filter_map(|a| a.next_notify_at)
                .min();
            let wait = next.map(|n| {
                (n.with_timezone(&Utc) - self.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            });
            tokio::select! {
                () = self.handle.shared.wake.notified() => {}
                () = tokio::time::sleep(wait.unwrap_or(Duration::MAX)), if wait.is_some() => {}
            }
        }
    }

    async fn load(&mut self) -> Result<(), sea_orm::DbErr> {
        let rows = alert::Entity::find()
            .filter(alert::Column::Status.ne("resolved"))
            .all(&self.db)
            .await?;
        self.alerts = rows
            .into_iter()
            .map(|r| (r.fingerprint.clone(), r))
            .collect();
        if !self.alerts.is_empty() {
            tracing::info!(
                alerts = self.alerts.len(),
                "alert router: firing alerts loaded"
            );
        }
        Ok(())
    }

    fn count(&self) {
        for s in [Severity::High, Severity::Medium, Severity::Low] {
            let n = self
                .alerts
                .values()
                .filter(|a| a.severity == s.as_str())
                .count();
            self.metrics
                .firing
                .with_label_values(&[s.as_str()])
                .set(n as i64);
        }
    }

    /// Applies `op`; gives it back when the database failed (it is tried
    /// again), except an acknowledgement, which is answered with the error.
    async fn apply(&mut self, op: Op, out: &mut Outbox) -> Result<(), Box<Op>> {
        match op {
            Op::Raise(new) => match self.raise(&new).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "alert router: recording an alert failed");
                    Err(Box::new(Op::Raise(new)))
                }
            },
            Op::Resolve(fp) => match self.resolve(&fp, out).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "alert router: recording a resolution failed");
                    Err(Box::new(Op::Resolve(fp)))
                }
            },
            Op::Ack { id, by, reply } => {
                let _ = reply.send(self.ack(id, by).await);
                Ok(())
            }
        }
    }

    async fn raise(&mut self, new: &NewAlert) -> Result<(), sea_orm::DbErr> {
        let now = self.clock.now();
        let first = now + chrono::Duration::milliseconds(self.config.group_wait_ms as i64);
        let labels = serde_json::to_string(&new.labels).unwrap_or_else(|_| "{}".into());
        if let Some(current) = self.alerts.get(&new.fingerprint) {
            if Severity::parse(&current.severity) >= new.severity {
                return Ok(()); // already firing: one notification per burst
            }
            // Worse than before: notified again, at the new severity, even
            // if the milder alert was acknowledged.
            let row = alert::ActiveModel {
                id: Set(current.id),
                name: Set(new.name.clone()),
                severity: Set(new.severity.as_str().to_owned()),
                summary: Set(new.summary.clone()),
                labels: Set(labels),
                status: Set("firing".to_owned()),
                tier: Set(0),
                notifications: Set(0),
                updated_at: Set(stamp(now)),
                next_notify_at: Set(Some(stamp(first))),
                acked_at: Set(None),
                acked_by: Set(None),
                ..Default::default()
            }
            .update(&self.db)
            .await?;
            tracing::warn!(alert = %row.name, id = row.id, severity = %row.severity, "alert severity rose");
            self.alerts.insert(new.fingerprint.clone(), row);
            return Ok(());
        }
        let row = alert::ActiveModel {
            fingerprint: Set(new.fingerprint.clone()),
            name: Set(new.name.clone()),
            severity: Set(new.severity.as_str().to_owned()),
            summary: Set(new.summary.clone()),
            labels: Set(labels),
            status: Set("firing".to_owned()),
            tier: Set(0),
            notifications: Set(0),
            started_at: Set(stamp(now)),
            updated_at: Set(stamp(now)),
            next_notify_at: Set(Some(stamp(first))),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        tracing::warn!(alert = %row.name, id = row.id, severity = %row.severity, summary = %row.summary, "alert firing");
        self.alerts.insert(new.fingerprint.clone(), row);
        Ok(())
    }

    async fn resolve(&mut self, fingerprint: &str, out: &mut Outbox) -> Result<(), sea_orm::DbErr> {
        let Some(current) = self.alerts.get(fingerprint) else {
            return Ok(()); // nothing fires under it
        };
        let now = stamp(self.clock.now());
        let row = alert::ActiveModel {
            id: Set(current.id),
            status: Set("resolved".to_owned()),
            updated_at: Set(now),
            resolved_at: Set(Some(now)),
            next_notify_at: Set(None),
            ..Default::default()
        }
        .update(&self.db)
        .await?;
        self.alerts.remove(fingerprint);
        tracing::info!(alert = %row.name, id = row.id, "alert resolved");
        let at = Position {
            tier: row.tier as u32,
            notifications: row.notifications as u32,
        };
        let channels = schedule::notified_channels(&self.config, &row.severity, at);
        add(out, Kind::Resolved, &channels, &AlertView::from(row));
        Ok(())
    }

    async fn ack(&mut self, id: i64, by: i64) -> Result<AlertView, AlertError> {
        let Some(current) = self.alerts.values().find(|a| a.id == id).cloned() else {
            return match alert::Entity::find_by_id(id).one(&self.db).await? {
                Some(_) => Err(AlertError::Resolved),
                None => Err(AlertError::NotFound),
            };
        };
        if current.status == "acknowledged" {
            return Ok(current.into());
        }
        let now = stamp(self.clock.now());
        let row = alert::ActiveModel {
            id: Set(id),
            status: Set("acknowledged".to_owned()),
            updated_at: Set(now),
            acked_at: Set(Some(now)),
            acked_by: Set(Some(by)),
            next_notify_at: Set(None),
            ..Default::default()
        }
        .update(&self.db)
        .await?;
        tracing::info!(alert = %row.name, id, "alert acknowledged");
        self.alerts.insert(row.fingerprint.clone(), row.clone());
        Ok(row.into())
    }

    /// Records, then gathers, every notification due now.
    async fn due(&mut self, out: &mut Outbox) -> Result<(), sea_orm::DbErr> {
        let now = self.clock.now();
        let is_due = |a: &alert::Model| {
            a.next_notify_at
                .is_some_and(|t| t.with_timezone(&Utc) <= now)
        };
        // Not notified yet: waiting out the group wait.
        let is_new = |a: &alert::Model| a.tier == 0 && a.notifications == 0;
        let firing = self.alerts.values().filter(|a| a.status == "firing");
        // When a new alert's group wait is over, every other new alert
        // joins its notification (a burst is one).
        let group = firing.clone().any(|a| is_due(a) && is_new(a));
        let mut due: Vec<alert::Model> = firing
            .filter(|a| is_due(a) || (group && is_new(a) && a.next_notify_at.is_some()))
            .cloned()
            .collect();
        due.sort_by_key(|a| a.id);
        for a in due {
            let at = Position {
                tier: a.tier as u32,
                notifications: a.notifications as u32,
            };
            let step = schedule::step(&self.config, &a.severity, at, now);
            let kind = if step.escalated {
                Kind::Escalated
            } else if at.notifications == 0 {
                Kind::Firing
            } else {
                Kind::Repeat
            };
            // Written before it is sent: a restart does not page again.
            let row = alert::ActiveModel {
                id: Set(a.id),
                tier: Set(step.position.tier as i32),
                notifications: Set(step.position.notifications as i32),
                updated_at: Set(stamp(now)),
                last_notified_at: Set(if step.channels.is_empty() {
                    a.last_notified_at
                } else {
                    Some(stamp(now))
                }),
                next_notify_at: Set(step.next.map(stamp)),
                ..Default::default()
            }
            .update(&self.db)
            .await?;
            if kind == Kind::Escalated {
                tracing::warn!(alert = %row.name, id = row.id, tier = row.tier, "alert escalated: nobody acknowledged it");
            }
            add(out, kind, &step.channels, &AlertView::from(row.clone()));
            self.alerts.insert(row.fingerprint.clone(), row);
        }
        Ok(())
    }

    fn send(&self, out: Outbox) {
        for ((_, channel), (kind, alerts)) in out {
            let n = Arc::new(Notification { kind, alerts });
            self.channels.deliver(&channel, n);
        }
    }
}
