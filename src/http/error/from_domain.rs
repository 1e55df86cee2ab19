//! Each domain's error mapped once to an HTTP status and a stable code:
//! validation, auth, accounts, Telegram, the account login flow and calls
//! to an account's actor.

use super::api_error::ApiError;
use crate::accounts::AccountServiceError;
use crate::accounts::actor::CallError;
use crate::accounts::login::LoginError;
use crate::auth::AuthError;
use crate::domain::validation::ValidationError;
use crate::telegram::TgError;
use actix_web::http::StatusCode;
use std::time::Duration;

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        let mut api = Self::bad_request("invalid_input", e.to_string());
        api.field = Some(e.field);
        api.reason = Some(e.code);
        api
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            AuthError::Validation(v) => v.into(),
            AuthError::RegistrationClosed => Self::new(S::FORBIDDEN, "registration_closed", msg),
            AuthError::UserExists => Self::new(S::CONFLICT, "user_exists", msg),
            AuthError::InvalidCredentials => Self::unauthorized("invalid_credentials", msg),
            AuthError::RateLimited { retry_after }
            | AuthError::RegistrationRateLimited { retry_after } => {
                Self::rate_limited(msg, retry_after)
            }
            AuthError::Busy => {
                let mut e = Self::new(S::SERVICE_UNAVAILABLE, "busy", msg);
                e.retry_after = Some(Duration::from_secs(1));
                e
            }
            AuthError::MissingToken => Self::unauthorized("token_missing", msg),
            AuthError::InvalidToken(j) => Self::unauthorized(j.code(), msg),
            AuthError::TokenRevoked => Self::unauthorized("token_revoked", msg),
            AuthError::Forbidden => Self::new(S::FORBIDDEN, "forbidden", msg),
            AuthError::UnknownUser => Self::not_found(msg),
            AuthError::Internal(err) => Self::internal(err.as_ref()),
        }
    }
}

impl From<AccountServiceError> for ApiError {
    fn from(e: AccountServiceError) -> Self {
        let msg = e.to_string();
        match e {
            AccountServiceError::Validation(v) => v.into(),
            AccountServiceError::Import(i) => {
                let mut api = Self::bad_request("invalid_input", msg);
                api.field = Some("session");
                api.reason = Some(i.code());
                api
            }
            AccountServiceError::NotFound => Self::not_found(msg),
            AccountServiceError::Exists => Self::new(StatusCode::CONFLICT, "account_exists", msg),
            AccountServiceError::OwnerGone => Self::unauthorized("token_revoked", msg),
            AccountServiceError::Internal(err) => Self::internal(err.as_ref()),
        }
    }
}

impl From<TgError> for ApiError {
    /// Telegram's answer to a call made on the caller's behalf. Network
    /// trouble is 503 (try again); flood waits are 429 with `Retry-After`.
    fn from(e: TgError) -> Self {
        use StatusCode as S;
        match e {
            TgError::FloodWait { seconds, .. } => {
                let mut api = Self::new(
                    S::TOO_MANY_REQUESTS,
                    "flood_wait",
                    format!("Telegram asks to wait {seconds} s before this call"),
                );
                api.retry_after = Some(Duration::from_secs(u64::from(seconds)));
                api
            }
            TgError::PeerInvalid => Self::new(
                S::NOT_FOUND,
                "chat_not_found",
                "no such chat for this account",
            ),
            TgError::PhoneNumberInvalid => {
                let mut api = Self::bad_request(
                    "phone_number_invalid",
                    "Telegram does not accept this phone number",
                );
                api.field = Some("phone");
                api
            }
            TgError::Banned => Self::new(
                S::FORBIDDEN,
                "phone_banned",
                "Telegram has banned this account",
            ),
            TgError::Unauthorized | TgError::Revoked | TgError::AuthKeyDuplicated => Self::new(
                S::CONFLICT,
                "session_invalid",
                "the account's session is no longer valid; sign in again",
            ),
            TgError::Network(_) | TgError::Timeout(_) => Self::new(
                S::SERVICE_UNAVAILABLE,
                "telegram_unavailable",
                "Telegram could not be reached; try again",
            ),
            TgError::CodeInvalid => Self::bad_request("code_invalid", "the code is wrong"),
            TgError::CodeExpired => Self::new(S::GONE, "code_expired", "the code has expired"),
            TgError::PasswordInvalid => {
                Self::bad_request("password_invalid", "the password is wrong")
            }
            TgError::BadRequest(_) | TgError::Other { .. } => {
                let code = e.code();
                tracing::warn!(error = code, "Telegram refused a call");
                Self::new(
                    S::BAD_GATEWAY,
                    "telegram_error",
                    format!("Telegram refused the call ({code})"),
                )
            }
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            LoginError::Account(a) => a.into(),
            LoginError::NotPending => Self::new(S::CONFLICT, "login_not_pending", msg),
            LoginError::Busy => Self::new(S::CONFLICT, "login_busy", msg),
            LoginError::WrongStep { .. } => Self::new(S::CONFLICT, "login_wrong_step", msg),
            LoginError::TooManyPending => {
                let mut api = Self::new(S::TOO_MANY_REQUESTS, "too_many_pending_logins", msg);
                api.retry_after = Some(Duration::from_secs(60));
                api
            }
            LoginError::CodeInvalid { attempts_left } => {
                let mut api = Self::bad_request("code_invalid", msg);
                api.field = Some("code");
                api.attempts_left = Some(attempts_left);
                api
            }
            LoginError::PasswordInvalid { attempts_left } => {
                let mut api = Self::bad_request("password_invalid", msg);
                api.field = Some("password");
                api.attempts_left = Some(attempts_left);
                api
            }
            LoginError::TooManyAttempts => Self::new(S::GONE, "too_many_attempts", msg),
            LoginError::Expired => Self::new(S::GONE, "login_expired", msg),
            LoginError::Telegram(t) => t.into(),
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::NotConnected(state) => {
                let mut api = Self::new(
                    StatusCode::CONFLICT,
                    "account_not_connected",
                    format!("the account is not connected (state: {state})"),
                );
                api.state = Some(state.as_str());
                api
            }
            CallError::Telegram(t) => t.into(),
            CallError::Internal(err) => Self::internal(err.as_ref()),
        }
    }
}

impl From<crate::app::RotateSessionError> for ApiError {
    fn from(e: crate::app::RotateSessionError) -> Self {
        match e {
            crate::app::RotateSessionError::Account(a) => a.into(),
            crate::app::RotateSessionError::Call(c) => c.into(),
        }
    }
}
