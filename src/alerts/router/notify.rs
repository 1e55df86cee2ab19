//! What goes out in a pass: the notifications due by the schedule,
//! Alertmanager's refresh of what still fires, and their delivery.

use super::clock::stamp;
use super::entry::{Entry, Outbox, add};
use super::state::Core;
use crate::alerts::AlertView;
use crate::alerts::channels::{Kind, Notification};
use crate::alerts::schedule::{self, Position};
use crate::entities::alert;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

impl Core {
    /// Records, then gathers, every notification due now.
    pub(super) async fn due(&mut self, out: &mut Outbox) {
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
    pub(super) fn alertmanager_refresh(&self) -> Duration {
        self.config.channels.alertmanager.refresh_ms
    }

    /// What reached Alertmanager and still fires.
    pub(super) fn in_alertmanager(&self) -> impl Iterator<Item = &Entry> {
        self.alerts
            .values()
            .filter(|e| e.m.status != "resolved" && e.notified.iter().any(|c| c == "alertmanager"))
    }

    /// Every refresh interval, posts to Alertmanager what reached it and still fires
    /// (not a notification: nothing is counted or written).
    pub(super) fn refresh_alertmanager(&mut self, out: &mut Outbox) {
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

    pub(super) fn send(&self, out: Outbox) {
        for ((_, channel), (kind, alerts)) in out {
            let n = Arc::new(Notification { kind, alerts });
            self.channels.deliver(&channel, n);
        }
    }
}
