//! The router's `alerts` table: what was firing before a start, and every
//! change written (memory first: the router pages while the database is
//! down, and writes once it answers).

use super::entry::Entry;
use super::state::Core;
use crate::alerts::Severity;
use crate::entities::alert;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

impl Core {
    /// Reads what was firing before the start. Alerts raised meanwhile (the
    /// database was down) give way to their stored row, which knows what
    /// was already sent.
    pub(super) async fn load(&mut self) {
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

    pub(super) fn db_failed(&mut self, what: &str, e: &sea_orm::DbErr) {
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
    pub(super) async fn persist(&mut self, fp: &str) -> bool {
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
    pub(super) async fn flush(&mut self) {
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
}
