//! The error body every route answers with:
//! `{"error":{"code","message", ...}}`.
//!
//! Each domain has its own error type (`AuthError`, `AccountServiceError`,
//! `ValidationError`, …); here each is mapped once to an HTTP status and a
//! stable `code`. Messages are safe to show. Internal failures are logged
//! with an incident id and answered with that id only: no SQL, no error
//! chain, no stack reaches a client (the seed's getSafeError).
//! The `observe` middleware gives actix's own errors (unknown route, wrong method,
//! bad path) the same shape.

use crate::accounts::AccountServiceError;
use crate::accounts::actor::CallError;
use crate::accounts::login::LoginError;
use crate::auth::AuthError;
use crate::domain::validation::ValidationError;
use crate::telegram::TgError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::time::Duration;

/// The JSON error document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code (`invalid_input`, `not_found`, …);
    /// each answer's description in this document names those it can carry.
    pub code: String,
    /// A human-readable explanation, safe to show.
    pub message: String,
    /// For `invalid_input`: which field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `invalid_input`: why, as a stable code (`too_short`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `rate_limited`: when to retry (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// For `internal`: quote it when reporting the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// For `code_invalid` / `password_invalid`: wrong answers left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
    /// For `account_not_connected`: the account's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl ErrorDetail {
    /// Just a code and a message.
    pub fn new(code: &str, message: &str) -> Self {
        Self {
            code: code.to_owned(),
            message: message.to_owned(),
            field: None,
            reason: None,
            retry_after_ms: None,
            incident_id: None,
            attempts_left: None,
            state: None,
        }
    }
}

/// An error with an HTTP status, a stable code and a client-safe message.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
    pub reason: Option<&'static str>,
    pub retry_after: Option<Duration>,
    pub incident_id: Option<String>,
    pub attempts_left: Option<u32>,
    pub state: Option<&'static str>,
    /// Adds `WWW-Authenticate: Bearer` (401s).
    pub bearer_challenge: bool,
    /// What went wrong inside, for the error tracker and the log only
    /// (never the answer).
    pub detail: Option<String>,
}

/// A 5xx answer's error, attached to the response for the error tracker.
#[derive(Clone, Debug)]
pub struct Failure {
    pub code: &'static str,
    /// The inside story when there is one, else the client's message.
    pub message: String,
    pub incident_id: String,
}

/// A new incident id (time-ordered, so ids sort by when they happened).
fn new_incident() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            reason: None,
            retry_after: None,
            incident_id: None,
            attempts_left: None,
            state: None,
            bearer_challenge: false,
            detail: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn rate_limited(message: impl Into<String>, retry_after: Duration) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        e.retry_after = Some(retry_after);
        e
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, code, message);
        e.bearer_challenge = true;
        e
    }

    /// An internal failure: logged in full with a new incident id; the
    /// client sees only the id.
    pub fn internal(err: &(dyn std::error::Error + 'static)) -> Self {
        let incident = new_incident();
        let chain = ErrorChain(err).to_string();
        tracing::error!(incident_id = %incident, error = %chain, "internal error");
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error; quote incident {incident} when reporting it"),
        );
        e.incident_id = Some(incident);
        e.detail = Some(chain);
        e
    }
}

/// Displays an error and its sources, for logs.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        // Every 5xx answer carries an incident id that a log line carries
        // too, so a user's report leads to its cause.
        let incident_id = match (&self.incident_id, self.status.is_server_error()) {
            (Some(id), _) => Some(id.clone()),
            (None, true) => {
                let id = new_incident();
                tracing::warn!(
                    incident_id = %id,
                    status = self.status.as_u16(),
                    code = self.code,
                    message = %self.message,
                    "answered with a server error"
                );
                Some(id)
            }
            (None, false) => None,
        };
        let mut res = HttpResponse::build(self.status);
        if let Some(retry) = self.retry_after {
            let secs = retry.as_millis().div_ceil(1000).max(1);
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.bearer_challenge {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tgvisor\""),
            ));
        }
        let mut res = res.json(ErrorBody {
            error: ErrorDetail {
                field: self.field.map(str::to_owned),
                reason: self.reason.map(str::to_owned),
                retry_after_ms: self
                    .retry_after
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                incident_id: incident_id.clone(),
                attempts_left: self.attempts_left,
                state: self.state.map(str::to_owned),
                ..ErrorDetail::new(self.code, &self.message)
            },
        });
        if let Some(incident_id) = incident_id {
            res.extensions_mut().insert(Failure {
                code: self.code,
                message: self.detail.clone().unwrap_or_else(|| self.message.clone()),
                incident_id,
            });
        }
        res
    }
}

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

/// Build an error response in the shared shape.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody {
        error: ErrorDetail::new(code, message),
    })
}

/// The answer for routes that do not exist.
pub async fn not_found() -> HttpResponse {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The code and message for an error status that carries no JSON body
/// (actix's own answers: wrong method, bad path, and so on).
pub fn shape_for(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept that method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "the request's Content-Type is not accepted here",
        ),
        StatusCode::UNAUTHORIZED => ("unauthorized", "authentication is required"),
        StatusCode::FORBIDDEN => ("forbidden", "not allowed"),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long to arrive"),
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("bad_request", "the request could not be understood"),
    }
}

/// Turn actix's JSON extractor errors into the shared shape.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        ),
        E::Payload(p) if super::body::is_body_timeout(p) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the request body did not arrive within server.body_timeout_ms",
        ),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        E::Deserialize(e) if e.is_data() => {
            ApiError::bad_request("invalid_field", format!("invalid request body: {e}"))
        }
        E::Deserialize(_) => {
            ApiError::bad_request("malformed_json", "the request body is not valid JSON")
        }
        _ => ApiError::bad_request("bad_request", "the request body could not be read"),
    };
    api.into()
}

/// Path segments that do not parse (`/accounts/abc`) name nothing.
pub fn path_error(_: actix_web::error::PathError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::not_found("no such resource").into()
}

/// Query strings that do not parse.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request("invalid_query", format!("invalid query string: {err}")).into()
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
