//! The JSON error document: [`ErrorBody`] and its [`ErrorDetail`].

use serde::Serialize;

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
