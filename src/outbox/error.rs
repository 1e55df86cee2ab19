//! Why a message was not accepted, with its stable code.

use crate::domain::AccountState;
use sea_orm::DbErr;

/// Why a message was not accepted. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("no such account")]
    NotFound,
    #[error("the account cannot send messages in its state ({0})")]
    Unavailable(AccountState),
    #[error("this Idempotency-Key was already used for a different request")]
    KeyReused,
    #[error("the outbox is not running")]
    Closed,
    /// The request's idempotency key was taken, and its row removed, while
    /// the request was decided: nothing was written; a retry decides again.
    #[error("a concurrent change touched this request; try again")]
    Raced,
    #[error("internal error")]
    Internal(#[source] DbErr),
}

impl EnqueueError {
    /// The stable error code (HTTP bodies and WebSocket error frames).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Unavailable(_) => "account_unavailable",
            Self::KeyReused => "idempotency_key_reused",
            Self::Closed => "unavailable",
            Self::Raced => "retry",
            Self::Internal(_) => "internal",
        }
    }

    /// When a retry may succeed, for refusals that are about timing.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        matches!(self, Self::Closed | Self::Raced).then_some(std::time::Duration::from_secs(1))
    }

    /// The same refusal, for a repeat of the refused request.
    pub(super) fn again(&self) -> Self {
        match self {
            Self::NotFound => Self::NotFound,
            Self::Unavailable(s) => Self::Unavailable(*s),
            Self::KeyReused => Self::KeyReused,
            Self::Closed => Self::Closed,
            Self::Raced => Self::Raced,
            Self::Internal(e) => Self::Internal(DbErr::Custom(e.to_string())),
        }
    }
}
