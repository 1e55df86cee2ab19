//! Removing an account: its actor, its pending sign-in, its rows and
//! sessions, its rate-limit and outbox state, its live subscribers and its
//! events.

use super::AppDeps;
use crate::accounts::AccountServiceError;
use crate::events::account_topic;
use std::net::IpAddr;

/// Removes `owner`'s account `id`. Another user's account answers
/// [`AccountServiceError::NotFound`], like one that does not exist.
///
/// Owned: stop its client first (so nothing is sent or written for it once
/// its rows are gone), drop a pending sign-in, then remove it and its
/// events.
pub async fn remove_account(
    app: &AppDeps,
    owner: i64,
    id: i64,
    ip: Option<IpAddr>,
) -> Result<(), AccountServiceError> {
    app.accounts.owned(owner, id).await?;
    app.logins.cancel(id);
    app.supervisor.forget(id).await;
    app.accounts.remove(owner, id, ip).await?;
    app.limiter.forget_account(id);
    app.outbox.forget(id);
    (app.drop_live_topic)(&account_topic(id));
    if let Err(e) = crate::accounts::delete_events(&app.db, id).await {
        tracing::warn!(account_id = id, error = %e, "deleting a removed account's events failed");
    }
    Ok(())
}
