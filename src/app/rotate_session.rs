//! Rotating an account's session on its owner's request, audited.

use super::AppDeps;
use crate::accounts::AccountServiceError;
use crate::accounts::actor::CallError;
use crate::audit::{self, Action, Actor, AuditEntry, Outcome};
use std::net::IpAddr;

/// Why a manual rotation was refused.
#[derive(Debug, thiserror::Error)]
pub enum RotateSessionError {
    /// Not the caller's account (or none), or the lookup failed.
    #[error(transparent)]
    Account(#[from] AccountServiceError),
    /// The rotation itself failed (e.g. the account has no session).
    #[error(transparent)]
    Call(#[from] CallError),
}

/// Re-encrypts `owner`'s account `id`'s session into a new row and records
/// it in the audit log; answers the new session id.
pub async fn rotate_session(
    app: &AppDeps,
    owner: i64,
    id: i64,
    ip: Option<IpAddr>,
) -> Result<i64, RotateSessionError> {
    app.accounts.owned(owner, id).await?;
    let session_id = app.supervisor.rotate(id).await?;
    audit::record_or_log(
        &app.db,
        AuditEntry::new(Actor::User(owner), Action::SessionRotate, Outcome::Success)
            .target(format!("account:{id}"))
            .ip(ip)
            .detail(serde_json::json!({ "session_id": session_id, "reason": "manual" })),
    )
    .await;
    Ok(session_id)
}
