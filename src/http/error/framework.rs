//! actix's own errors in the shared shape: unknown routes, statuses that
//! carry no body, and the JSON, path and query extractors' refusals.

use super::api_error::ApiError;
use super::body::{ErrorBody, ErrorDetail};
use actix_web::HttpResponse;
use actix_web::http::StatusCode;

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
        E::Payload(p) if crate::http::body::is_body_timeout(p) => ApiError::new(
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
