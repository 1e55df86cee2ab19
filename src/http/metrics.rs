//! `/metrics`: the Prometheus text exposition.

use super::AppState;
use super::error::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = state.metrics.render().map_err(|e| {
        tracing::error!(error = %e, "could not encode metrics");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "could not encode metrics",
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}
