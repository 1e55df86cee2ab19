//! The error body every route answers with:
//! `{"error":{"code","message", ...}}`.
//!
//! Each domain has its own error type (`AuthError`, `AccountServiceError`,
//! `ValidationError`, …); here each is mapped once to an HTTP status and a
//! stable `code`. Messages are safe to show. Internal failures are logged
//! with an incident id and answered with that id only: no SQL, no error
//! chain, no stack reaches a client.
//! The `observe` middleware gives actix's own errors (unknown route, wrong method,
//! bad path) the same shape.

mod api_error;
mod body;
mod framework;
mod from_domain;

pub use api_error::{ApiError, Failure};
pub use body::{ErrorBody, ErrorDetail};
pub use framework::{error_response, json_error, not_found, path_error, query_error, shape_for};
