//! An alert's life: raised (or raised again, worse), resolved,
//! acknowledged.

use super::clock::stamp;
use super::entry::{Entry, Outbox, add};
use super::state::Core;
use crate::alerts::channels::Kind;
use crate::alerts::{AlertError, AlertView, NewAlert, Severity};
use crate::entities::alert;
use sea_orm::EntityTrait;

impl Core {
    pub(super) async fn raise(&mut self, new: &NewAlert) {
        let now = self.clock.now();
        let group_wait =
            chrono::Duration::from_std(self.config.group_wait_ms).unwrap_or(chrono::Duration::MAX);
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

    pub(super) async fn resolve(&mut self, fingerprint: &str, out: &mut Outbox) {
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

    pub(super) async fn ack(&mut self, id: i64, by: i64) -> Result<AlertView, AlertError> {
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
}
