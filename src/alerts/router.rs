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
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
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
            unwritten: Vec::new(),
            alertmanager_posted: tokio::time::Instant::now(),
            loaded: false,
            db_ok: true,
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
    /// What is not resolved (or resolved and not yet written), by
    /// fingerprint.
    alerts: HashMap<String, Entry>,
    /// Resolved alerts whose resolution is not written yet.
    unwritten: Vec<Entry>,
    /// The last time Alertmanager was told what still fires.
    alertmanager_posted: tokio::time::Instant,
    /// The stored alerts were read at start.
    loaded: bool,
    /// The last write reached the database (a failure is logged once per
    /// outage, not once per try).
    db_ok: bool,
    clock: Clock,
}

/// An alert as the router holds it: memory first, the `alerts` table as
/// soon as it answers.
struct Entry {
    m: alert::Model,
    /// It has a row (its id is real).
    saved: bool,
    /// Memory is ahead of the row.
    dirty: bool,
    /// Every channel it reached (its resolution goes to all of them).
    notified: Vec<String>,
}

impl Entry {
    fn loaded(m: alert::Model) -> Self {
        let notified = serde_json::from_str(&m.notified).unwrap_or_default();
        Self {
            m,
            saved: true,
            dirty: false,
            notified,
        }
    }

    fn view(&self) -> AlertView {
        AlertView::from(self.m.clone())
    }
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

    /// Reads what was firing before the start. Alerts raised meanwhile (the
    /// database was down) give way to their stored row, which knows what
    /// was already sent.
    async fn load(&mut self) {
        let rows = match alert::Entity::find()
            .filter(alert::Column::Status.ne("resolved"))
            .all(&self.db)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                self.db_failed("loading alerts", &e);
                return;
            }
        };
        self.loaded = true;
        self.db_ok = true;
        for row in rows {
            let fp = row.fingerprint.clone();
            let stored = Entry::loaded(row);
            match self.alerts.get(&fp) {
                Some(fresh) if fresh.saved => {}
                Some(fresh) => {
                    let mut stored = stored;
                    if Severity::parse(&fresh.m.severity) > Severity::parse(&stored.m.severity) {
                        stored.m.severity = fresh.m.severity.clone();
                        stored.m.summary = fresh.m.summary.clone();
                        stored.dirty = true;
                    }
                    for c in &fresh.notified {
                        if !stored.notified.contains(c) {
                            stored.notified.push(c.clone());
                            stored.dirty = true;
                        }
                    }
                    self.alerts.insert(fp, stored);
                }
                None => {
                    self.alerts.insert(fp, stored);
                }
            }
        }
        if !self.alerts.is_empty() {
            tracing::info!(
                alerts = self.alerts.len(),
                "alert router: firing alerts loaded"
            );
        }
    }

    fn db_failed(&mut self, what: &str, e: &sea_orm::DbErr) {
        if self.db_ok {
            tracing::warn!(error = %e, "alert router: {what} failed; alerts are sent anyway and written once the database answers");
        }
        self.db_ok = false;
    }

    /// Writes `e`'s row (inserting it when it has none).
    async fn write(db: &DatabaseConnection, e: &Entry) -> Result<alert::Model, sea_orm::DbErr> {
        let mut m = e.m.clone();
        m.notified = serde_json::to_string(&e.notified).unwrap_or_else(|_| "[]".into());
        let mut row: alert::ActiveModel = m.into();
        row = row.reset_all();
        if e.saved {
            row.update(db).await
        } else {
            row.id = sea_orm::ActiveValue::NotSet;
            row.insert(db).await
        }
    }

    fn db_back(&mut self) {
        if !self.db_ok {
            tracing::info!("alert router: the database answers again; alert state written");
        }
        self.db_ok = true;
    }

    /// Writes `fp`'s entry if memory is ahead of its row; answers whether
    /// the row is current. A resolved entry leaves memory once written (or
    /// waits in `unwritten` if it cannot be).
    async fn persist(&mut self, fp: &str) -> bool {
        let Some(e) = self.alerts.get(fp) else {
            return true;
        };
        if !e.dirty {
            return true;
        }
        match Self::write(&self.db, e).await {
            Ok(stored) => {
                self.db_back();
                if stored.status == "resolved" {
                    self.alerts.remove(fp);
                } else if let Some(e) = self.alerts.get_mut(fp) {
                    e.m.id = stored.id;
                    e.saved = true;
                    e.dirty = false;
                }
                true
            }
            Err(err) => {
                self.db_failed("writing an alert", &err);
                if self
                    .alerts
                    .get(fp)
                    .is_some_and(|e| e.m.status == "resolved")
                    && let Some(e) = self.alerts.remove(fp)
                {
                    self.unwritten.push(e);
                }
                false
            }
        }
    }

    /// Writes every entry memory is ahead of.
    async fn flush(&mut self) {
        let dirty: Vec<String> = self
            .alerts
            .iter()
            .filter(|(_, e)| e.dirty)
            .map(|(fp, _)| fp.clone())
            .collect();
        for fp in dirty {
            if !self.persist(&fp).await {
                return; // still down: the next pass tries again
            }
        }
        while let Some(e) = self.unwritten.pop() {
            match Self::write(&self.db, &e).await {
                Ok(_) => self.db_back(),
                Err(err) => {
                    self.db_failed("writing a resolution", &err);
                    self.unwritten.push(e);
                    return;
                }
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

    async fn raise(&mut self, new: &NewAlert) {
        let now = self.clock.now();
        let group_wait = chrono::Duration::milliseconds(self.config.group_wait_ms as i64);
        let first = stamp(now + group_wait);
        let labels = serde_json::to_string(&new.labels).unwrap_or_else(|_| "{}".into());
        // Names and summaries are bounded: the table's column is.
        let name: String = new.name.chars().take(128).collect();
        if let Some(current) = self.alerts.get_mut(&new.fingerprint) {
            if Severity::parse(&current.m.severity) >= new.severity {
                return; // already firing: one notification per burst
            }
            // Worse than before: notified again, at the new severity, even
            // if the milder alert was acknowledged; the channels it already
            // reached still get its resolution.
            let m = &mut current.m;
            m.name = name;
            m.severity = new.severity.as_str().to_owned();
            m.summary = new.summary.clone();
            m.labels = labels;
            m.status = "firing".to_owned();
            m.tier = 0;
            m.notifications = 0;
            m.updated_at = stamp(now);
            m.next_notify_at = Some(first);
            m.acked_at = None;
            m.acked_by = None;
            current.dirty = true;
            tracing::warn!(alert = %current.m.name, id = current.m.id, severity = %current.m.severity, "alert severity rose");
        } else {
            let m = alert::Model {
                id: 0,
                fingerprint: new.fingerprint.clone(),
                name,
                severity: new.severity.as_str().to_owned(),
                summary: new.summary.clone(),
                labels,
                status: "firing".to_owned(),
                tier: 0,
                notifications: 0,
                notified: "[]".to_owned(),
                started_at: stamp(now),
                updated_at: stamp(now),
                last_notified_at: None,
                next_notify_at: Some(first),
                acked_at: None,
                acked_by: None,
                resolved_at: None,
            };
            tracing::warn!(alert = %m.name, severity = %m.severity, summary = %m.summary, "alert firing");
            self.alerts.insert(
                new.fingerprint.clone(),
                Entry {
                    m,
                    saved: false,
                    dirty: true,
                    notified: Vec::new(),
                },
            );
        }
        self.persist(&new.fingerprint).await;
    }

    async fn resolve(&mut self, fingerprint: &str, out: &mut Outbox) {
        let now = stamp(self.clock.now());
        let Some(e) = self.alerts.get_mut(fingerprint) else {
            return; // nothing fires under it
        };
        e.m.status = "resolved".to_owned();
        e.m.updated_at = now;
        e.m.resolved_at = Some(now);
        e.m.next_notify_at = None;
        e.dirty = true;
        tracing::info!(alert = %e.m.name, id = e.m.id, "alert resolved");
        let (channels, view) = (e.notified.clone(), e.view());
        if !e.saved && channels.is_empty() {
            // Never written, never sent: nothing to remember.
            self.alerts.remove(fingerprint);
            return;
        }
        self.persist(fingerprint).await;
        add(out, Kind::Resolved, &channels, &view);
    }

    async fn ack(&mut self, id: i64, by: i64) -> Result<AlertView, AlertError> {
        let found = self
            .alerts
            .iter()
            .find(|(_, e)| e.saved && e.m.id == id && e.m.status != "resolved")
            .map(|(fp, _)| fp.clone());
        let Some(fp) = found else {
            return match alert::Entity::find_by_id(id).one(&self.db).await? {
                Some(_) => Err(AlertError::Resolved),
                None => Err(AlertError::NotFound),
            };
        };
        let now = stamp(self.clock.now());
        let Some(e) = self.alerts.get_mut(&fp) else {
            return Err(AlertError::NotFound);
        };
        if e.m.status != "acknowledged" {
            e.m.status = "acknowledged".to_owned();
            e.m.updated_at = now;
            e.m.acked_at = Some(now);
            e.m.acked_by = Some(by);
            e.m.next_notify_at = None;
            e.dirty = true;
            tracing::info!(alert = %e.m.name, id, "alert acknowledged");
        }
        let view = e.view();
        self.persist(&fp).await;
        Ok(view)
    }

    /// Records, then gathers, every notification due now.
    async fn due(&mut self, out: &mut Outbox) {
        let now = self.clock.now();
        let is_due = |m: &alert::Model| {
            m.next_notify_at
                .is_some_and(|t| t.with_timezone(&Utc) <= now)
        };
        // Not notified yet: waiting out the group wait.
        let is_new = |m: &alert::Model| m.tier == 0 && m.notifications == 0;
        let firing = self.alerts.values().filter(|e| e.m.status == "firing");
        // When a new alert's group wait is over, every other new alert
        // joins its notification (a burst is one).
        let group = firing.clone().any(|e| is_due(&e.m) && is_new(&e.m));
        let mut due: Vec<(i64, String)> = firing
            .filter(|e| is_due(&e.m) || (group && is_new(&e.m) && e.m.next_notify_at.is_some()))
            .map(|e| (e.m.started_at.timestamp_millis(), e.m.fingerprint.clone()))
            .collect();
        due.sort();
        for (_, fp) in due {
            let Some(e) = self.alerts.get_mut(&fp) else {
                continue;
            };
            let at = Position {
                tier: e.m.tier as u32,
                notifications: e.m.notifications as u32,
            };
            let step = schedule::step(&self.config, &e.m.severity, at, now);
            let kind = if step.escalated {
                Kind::Escalated
            } else if at.notifications == 0 {
                Kind::Firing
            } else {
                Kind::Repeat
            };
            e.m.tier = step.position.tier as i32;
            e.m.notifications = step.position.notifications as i32;
            e.m.updated_at = stamp(now);
            if !step.channels.is_empty() {
                e.m.last_notified_at = Some(stamp(now));
            }
            e.m.next_notify_at = step.next.map(stamp);
            for c in &step.channels {
                if !e.notified.contains(c) {
                    e.notified.push(c.clone());
                }
            }
            e.dirty = true;
            if kind == Kind::Escalated {
                tracing::warn!(alert = %e.m.name, id = e.m.id, tier = e.m.tier, "alert escalated: nobody acknowledged it");
            }
            let view = e.view();
            // Written before it is sent, when the database answers: a
            // restart does not page again. When it does not, the page goes
            // out anyway.
            self.persist(&fp).await;
            add(out, kind, &step.channels, &view);
        }
    }

    /// Alertmanager forgets an alert nobody posts again (its `endsAt`):
    /// what reached it and still fires, acknowledged or not, is posted this
    /// often.
    fn alertmanager_refresh(&self) -> Duration {
        Duration::from_millis(self.config.channels.alertmanager.refresh_ms)
    }

    /// What reached Alertmanager and still fires.
    fn in_alertmanager(&self) -> impl Iterator<Item = &Entry> {
        self.alerts
            .values()
            .filter(|e| e.m.status != "resolved" && e.notified.iter().any(|c| c == "alertmanager"))
    }

    /// Every refresh interval, posts to Alertmanager what reached it and still fires
    /// (not a notification: nothing is counted or written).
    fn refresh_alertmanager(&mut self, out: &mut Outbox) {
        if self.alertmanager_posted.elapsed() < self.alertmanager_refresh() {
            return;
        }
        self.alertmanager_posted = tokio::time::Instant::now();
        let channel = ["alertmanager".to_owned()];
        let views: Vec<AlertView> = self.in_alertmanager().map(Entry::view).collect();
        for view in views {
            // Already in this pass (a step just notified it): once is enough.
            let queued = out.iter().any(|((_, c), (_, alerts))| {
                c == "alertmanager"
                    && alerts
                        .iter()
                        .any(|a| a.id == view.id && a.fingerprint == view.fingerprint)
            });
            if !queued {
                add(out, Kind::Repeat, &channel, &view);
            }
        }
    }

    fn send(&self, out: Outbox) {
        for ((_, channel), (kind, alerts)) in out {
            let n = Arc::new(Notification { kind, alerts });
            self.channels.deliver(&channel, n);
        }
    }
}
