//! [`ApiError`]: an error with an HTTP status, a stable code and a
//! client-safe message, and how it becomes a response (internal failures
//! logged under an incident id, [`Failure`] attached for the error tracker).

use super::body::{ErrorBody, ErrorDetail};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use std::time::Duration;

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
