//! What a sign-in step answers: its progress, the outcome the steps hand
//! to the use case that completes a sign-in, and why a step was refused.

use crate::accounts::{AccountServiceError, AccountView};
use crate::domain::validation::ValidationError;
use crate::sessions::SessionData;
use crate::telegram::TgError;
use sea_orm::DbErr;
use std::net::IpAddr;

/// Why a sign-in step was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Account(#[from] AccountServiceError),
    #[error("no sign-in is waiting for this account; start again with POST /api/v1/accounts")]
    NotPending,
    #[error("this sign-in step is already being submitted")]
    Busy,
    #[error("this sign-in waits for the {expected}, not the {got}")]
    WrongStep {
        expected: &'static str,
        got: &'static str,
    },
    #[error("too many sign-ins are waiting; try again later")]
    TooManyPending,
    #[error("the code is wrong ({attempts_left} attempts left)")]
    CodeInvalid { attempts_left: u32 },
    #[error("the password is wrong ({attempts_left} attempts left)")]
    PasswordInvalid { attempts_left: u32 },
    #[error("too many wrong answers; start the sign-in again")]
    TooManyAttempts,
    #[error("the code has expired; start the sign-in again")]
    Expired,
    #[error("Telegram refused: {0}")]
    Telegram(TgError),
}

impl From<DbErr> for LoginError {
    fn from(e: DbErr) -> Self {
        Self::Account(e.into())
    }
}

impl From<ValidationError> for LoginError {
    fn from(e: ValidationError) -> Self {
        Self::Account(e.into())
    }
}

/// What the caller does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// Submit the code Telegram sent (`POST /accounts/{id}/login/code`).
    Code,
    /// Submit the 2FA password (`POST /accounts/{id}/login/password`).
    Password,
    /// Signed in; the account is connecting.
    Done,
}

/// The answer to a sign-in step.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LoginProgress {
    pub account: AccountView,
    pub next_step: NextStep,
    /// The 2FA password hint, when the next step is the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_hint: Option<String>,
    /// How long the pending sign-in waits for the next step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_ms: Option<u64>,
}

/// What a submitted step led to.
pub enum StepOutcome {
    /// The sign-in goes on (or waits for the password).
    Progress(LoginProgress),
    /// Telegram accepted it; the pending sign-in is gone, and the caller
    /// completes it (see `crate::app::sign_in`).
    SignedIn(SignedIn),
}

/// A sign-in Telegram accepted, not yet stored.
pub struct SignedIn {
    pub owner: i64,
    pub account_id: i64,
    /// The new session, to be encrypted and stored.
    pub session: SessionData,
    pub telegram_user_id: i64,
    pub ip: Option<IpAddr>,
}
