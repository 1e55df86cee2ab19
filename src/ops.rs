//! Operator commands behind the CLI (`tgvisor keys …`, `tgvisor users …`).
//! They open the database themselves and leave an audit record.

use crate::audit::{self, Action, Actor, AuditEntry, Outcome};
use crate::config::Settings;
use crate::security::jwt::Role;
use crate::sessions::{RewrapReport, SessionStore};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

/// What `keys rotate` found and did.
#[derive(Debug, serde::Serialize)]
pub struct KeyRotation {
    pub active_key: String,
    /// Rows per key id before the run.
    pub before: BTreeMap<String, u64>,
    /// Rows per key id after the run.
    pub after: BTreeMap<String, u64>,
    pub report: RewrapReport,
    /// True when stopped before finishing (run again to resume).
    pub interrupted: bool,
}

impl KeyRotation {
    /// Every session is sealed with the active key: old keys can go.
    pub fn complete(&self) -> bool {
        !self.interrupted && self.after.keys().all(|k| *k == self.active_key)
    }
}

/// Re-encrypts every session under the active key of `secrets.session`,
/// `batch_size` rows per transaction. Safe to interrupt and run again.
///
/// Run it after the service has been restarted with the new active key
/// (so that nothing writes under the old key meanwhile); remove the old key
/// from the configuration only once `after` shows no rows under it.
pub async fn rotate_session_keys(
    settings: &Settings,
    batch_size: u64,
    dry_run: bool,
    mut progress: impl FnMut(&RewrapReport) -> ControlFlow<()>,
) -> anyhow::Result<KeyRotation> {
    let keyring = Arc::new(crate::security::session_keyring(settings)?);
    let db = crate::db::connect(&settings.database_url(), &settings.database).await?;
    crate::db::migrate(&db).await?;
    let store = SessionStore::new(db.clone(), keyring.clone());
    let before = store.key_usage().await?;
    let active_key = keyring.active_id().as_str().to_owned();
    if dry_run {
        let report = RewrapReport::default();
        return Ok(KeyRotation {
            active_key,
            after: before.clone(),
            before,
            report,
            interrupted: false,
        });
    }
    let mut interrupted = false;
    let report = store
        .rewrap_all(batch_size, |r| {
            let flow = progress(r);
            interrupted = flow.is_break();
            flow
        })
        .await?;
    let after = store.key_usage().await?;
    let complete = after.keys().all(|k| *k == active_key);
    let outcome = if complete && !interrupted {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    audit::record(
        &db,
        AuditEntry::new(Actor::Cli, Action::KeyRotate, outcome).detail(serde_json::json!({
            "active_key": active_key,
            "rewrapped": report.rewrapped,
            "raced": report.raced,
            "failed": report.failed.len(),
            "batches": report.batches,
            "interrupted": interrupted,
        })),
    )
    .await?;
    db.close().await?;
    Ok(KeyRotation {
        active_key,
        before,
        after,
        report,
        interrupted,
    })
}

/// Sets a user's role; revokes the user's tokens.
pub async fn set_role(settings: &Settings, username: &str, role: Role) -> anyhow::Result<()> {
    let db = crate::db::connect(&settings.database_url(), &settings.database).await?;
    crate::db::migrate(&db).await?;
    let auth = crate::auth::AuthService::from_settings(settings, db.clone())?;
    auth.set_role(username, role).await.map_err(|e| match e {
        crate::auth::AuthError::Internal(inner) => inner.context("setting the role"),
        other => anyhow::Error::new(other),
    })?;
    db.close().await?;
    Ok(())
}
