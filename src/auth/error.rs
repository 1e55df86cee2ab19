//! [`AuthError`]: why an auth operation was refused.

use crate::domain::validation::ValidationError;
use crate::security::jwt::JwtError;
use crate::security::password::PasswordError;
use sea_orm::DbErr;
use std::time::Duration;

/// Why an auth operation was refused. Each maps to one HTTP status and code.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("registration is closed on this server")]
    RegistrationClosed,
    #[error("that username or e-mail address is already registered")]
    UserExists,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("too many login attempts; try again later")]
    RateLimited { retry_after: Duration },
    #[error("the server is busy checking passwords; try again shortly")]
    Busy,
    #[error("too many registrations from this address; try again later")]
    RegistrationRateLimited { retry_after: Duration },
    #[error("an access token is required (Authorization: Bearer <token>)")]
    MissingToken,
    #[error("{0}")]
    InvalidToken(JwtError),
    #[error("the token has been revoked")]
    TokenRevoked,
    #[error("this operation requires the admin role")]
    Forbidden,
    #[error("no such user")]
    UnknownUser,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<DbErr> for AuthError {
    fn from(e: DbErr) -> Self {
        Self::Internal(e.into())
    }
}

impl From<PasswordError> for AuthError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => Self::Busy,
            e => Self::Internal(anyhow::anyhow!("password hashing: {e}")),
        }
    }
}
