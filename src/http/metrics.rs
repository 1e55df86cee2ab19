//! `/metrics`: the Prometheus text exposition.

use super::AppState;
use super::error::ApiError;
use actix_web::{HttpResponse, web};

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    responses(
        (status = 200, description = "Prometheus text exposition format", content_type = "text/plain"),
        (status = 500, description = "`internal`: the metrics could not be rendered", body = super::error::ErrorBody),
    )
)]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = state.metrics.render().map_err(|e| ApiError::internal(&e))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}
