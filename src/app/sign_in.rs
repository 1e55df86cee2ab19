//! Signing an account in over the API: the steps run in the login
//! service; completing a sign-in spans the account row, the encrypted
//! session store, the audit log and the account supervisor.

use super::AppDeps;
use crate::accounts::AccountServiceError;
use crate::accounts::login::{LoginError, LoginProgress, NextStep, SignedIn, StepOutcome};
use crate::audit::{self, Action, Actor, AuditEntry, Outcome};
use sea_orm::TransactionTrait;
use secrecy::SecretString;
use std::net::IpAddr;

/// Step 1: ask Telegram for a code.
pub async fn start_sign_in(
    app: &AppDeps,
    owner: i64,
    phone: &str,
    ip: Option<IpAddr>,
) -> Result<LoginProgress, LoginError> {
    app.logins.start(owner, phone, ip).await
}

/// Step 2: the code from the phone; completes the sign-in when no 2FA
/// password is needed.
pub async fn submit_code(
    app: &AppDeps,
    owner: i64,
    account_id: i64,
    code: &str,
    ip: Option<IpAddr>,
) -> Result<LoginProgress, LoginError> {
    let outcome = app.logins.submit_code(owner, account_id, code, ip).await?;
    finish_step(app, outcome).await
}

/// Step 3 (2FA accounts): the password; completes the sign-in.
pub async fn submit_password(
    app: &AppDeps,
    owner: i64,
    account_id: i64,
    password: SecretString,
    ip: Option<IpAddr>,
) -> Result<LoginProgress, LoginError> {
    let outcome = app
        .logins
        .submit_password(owner, account_id, password, ip)
        .await?;
    finish_step(app, outcome).await
}

async fn finish_step(app: &AppDeps, outcome: StepOutcome) -> Result<LoginProgress, LoginError> {
    match outcome {
        StepOutcome::Progress(progress) => Ok(progress),
        StepOutcome::SignedIn(signed_in) => complete_sign_in(app, signed_in).await,
    }
}

/// Telegram accepted the sign-in: the account row (now `connecting`, with
/// its Telegram user id), its encrypted session and the audit record
/// commit together; then the account's actor starts.
async fn complete_sign_in(app: &AppDeps, s: SignedIn) -> Result<LoginProgress, LoginError> {
    let SignedIn {
        owner,
        account_id,
        session,
        telegram_user_id,
        ip,
    } = s;
    let plaintext = session.to_bytes();
    let txn = app.db.begin().await?;
    if !crate::accounts::login::mark_signed_in(&txn, owner, account_id, telegram_user_id).await? {
        // Removed while the code was being checked.
        return Err(AccountServiceError::NotFound.into());
    }
    let session_id = app
        .accounts
        .store()
        .activate_new(&txn, account_id, &plaintext)
        .await
        .map_err(AccountServiceError::from)?;
    audit::record(
        &txn,
        AuditEntry::new(Actor::User(owner), Action::AccountAdd, Outcome::Success)
            .target(format!("account:{account_id}"))
            .ip(ip)
            .detail(serde_json::json!({ "method": "sign_in", "session_id": session_id })),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(account_id, session_id, "signed in");
    if let Err(e) = app.supervisor.start(account_id).await {
        tracing::error!(account_id, error = %e, "starting the account actor failed");
    }
    Ok(LoginProgress {
        account: app.accounts.get(owner, account_id).await?,
        next_step: NextStep::Done,
        password_hint: None,
        expires_in_ms: None,
    })
}
