//! A deadline on reading a request's body.
//!
//! A client that sends its headers and then part of a body (or nothing)
//! would otherwise hold its connection, a file descriptor and a worker's
//! attention for as long as it likes; enough of them exhausted the
//! process' descriptors and `/health` stopped answering. Every request that
//! announces a body (`Content-Length` above 0, or chunked) must deliver
//! all of it within `server.body_timeout_ms` of its headers; past that the
//! body reads as an error, the extractor answers 408 `body_timeout`, and
//! the connection is closed. Uploads are the exception: their bodies are
//! long by nature and have their own idle timeout
//! (`uploads.body_idle_timeout_ms`), and a WebSocket upgrade has no body.
//!
//! The deadline rides on the stream that times the client's body
//! ([`super::body_wait`]); this module decides which bodies get one and
//! what a late one reads as.

use actix_web::dev::ServiceRequest;
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::web::Data;
use std::time::Duration;

/// The route whose body is an upload, timed by its own idle timeout.
pub const UPLOAD_ROUTE: &str = "/api/v1/accounts/{id}/uploads";

/// The message of the error a late body reads as.
const TIMED_OUT: &str = "the request body did not arrive in time";

/// The error a body that missed its deadline reads as.
pub fn timed_out() -> PayloadError {
    PayloadError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, TIMED_OUT))
}

/// Whether `err` is a body that missed its deadline.
pub fn is_body_timeout(err: &PayloadError) -> bool {
    matches!(err, PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut && e.to_string() == TIMED_OUT)
}

/// Whether the request announces a body.
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    length.is_some_and(|n| n > 0) || headers.contains_key(TRANSFER_ENCODING)
}

/// The deadline `req`'s body gets: every announced body but an upload's.
pub fn deadline_for(req: &ServiceRequest) -> Option<Duration> {
    if !has_body(req) || req.match_pattern().as_deref() == Some(UPLOAD_ROUTE) {
        return None;
    }
    req.app_data::<Data<super::AppState>>()
        .map(|s| s.settings.server.body_timeout_ms)
}
