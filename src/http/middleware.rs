//! Per-request observability: a request id (echoed as `x-request-id`), a
//! tracing span carrying it, metrics labelled by the matched route pattern
//! (never the raw path), and one log line per request. Query strings are
//! never logged: they are where clients put tokens by mistake.

use super::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A client-supplied id is kept when it is short and plain; otherwise a new one is made.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// The method as a metric label and log field: one of the methods HTTP
/// defines, or `other`. A client may send any token as its method; taken
/// as it is, each new one would be a new time series.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method as M;
    match *method {
        M::GET => "GET",
        M::HEAD => "HEAD",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::PATCH => "PATCH",
        M::OPTIONS => "OPTIONS",
        M::TRACE => "TRACE",
        M::CONNECT => "CONNECT",
        _ => "other",
    }
}

pub async fn observe(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let started = Instant::now();
    let deadline = super::body::deadline_for(&req);
    let body = super::body_wait::time_body(&mut req, deadline);
    let id = request_id(&req);
    let method = method_label(req.method());
    let path = req.path().to_owned();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let span = tracing::info_span!("http", request_id = %id, method = %method, path = %path);
    if let Some(m) = &metrics {
        m.http_in_flight.inc();
    }
    let result = next.call(req).instrument(span.clone()).await;
    if let Some(m) = &metrics {
        m.http_in_flight.dec();
    }
    let elapsed = started.elapsed();
    let (status, route) = match &result {
        Ok(res) => (
            res.status().as_u16(),
            res.request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned()),
        ),
        Err(e) => (
            e.as_response_error().status_code().as_u16(),
            "unmatched".to_owned(),
        ),
    };
    if let Some(m) = &metrics {
        let status = status.to_string();
        m.http_requests
            .with_label_values(&[method, &route, &status])
            .inc();
        // The service's time: a client's slow body is the client's.
        let waited = body.map_or(std::time::Duration::ZERO, |b| b.waited());
        m.http_duration
            .with_label_values(&[method, &route])
            .observe(elapsed.saturating_sub(waited).as_secs_f64());
    }
    span.in_scope(|| {
        tracing::info!(
            route = %route,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request completed"
        );
    });
    let mut res = shape_errors(result?);
    if let (Some(m), Some(failure)) = (
        &metrics,
        res.response()
            .extensions()
            .get::<super::error::Failure>()
            .cloned(),
    ) {
        m.errors.track(
            failure.code,
            &failure.message,
            Some(&failure.incident_id),
            Some(&route),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    Ok(res)
}

/// Gives error answers that carry no JSON body (actix's own: 405, 404 from
/// a resource, and the like) the shared `{"error":{"code","message"}}` shape.
fn shape_errors<B: MessageBody>(res: ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> {
    let status = res.status();
    let is_json = res
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res.map_into_left_body();
    }
    let (code, message) = super::error::shape_for(status);
    let (req, old) = res.into_parts();
    let mut shaped = if status.is_server_error() {
        // As every 5xx: an incident id its log line carries too, and the
        // error tracker's record.
        let mut e = super::error::ApiError::new(status, code, message);
        e.detail = Some(format!("{status} without a body from {}", req.path()));
        actix_web::ResponseError::error_response(&e)
    } else {
        super::error::error_response(status, code, message)
    };
    // Keep headers such as Allow (405) and Retry-After.
    for (name, value) in old.headers() {
        if name != actix_web::http::header::CONTENT_TYPE
            && name != actix_web::http::header::CONTENT_LENGTH
        {
            shaped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(req, shaped).map_into_right_body()
}
