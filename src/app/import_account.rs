//! Importing an account from a Telethon string session, and starting its
//! actor.

use super::AppDeps;
use crate::accounts::{AccountServiceError, AccountView};
use std::net::IpAddr;

/// Stores the account and its encrypted session, then starts its actor.
/// An actor that does not start is logged, not an error: the row says
/// `connecting`, and the next boot starts it.
pub async fn import_account(
    app: &AppDeps,
    owner: i64,
    phone: &str,
    session: &str,
    ip: Option<IpAddr>,
) -> Result<AccountView, AccountServiceError> {
    let account = app.accounts.import(owner, phone, session, ip).await?;
    if let Err(e) = app.supervisor.start(account.id).await {
        // The row says `connecting`: the next boot starts it.
        tracing::error!(account_id = account.id, error = %e, "starting the account actor failed");
    }
    Ok(account)
}
