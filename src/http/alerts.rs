//! `GET /api/v1/alerts` and `POST /api/v1/alerts/{id}/ack` (admin role).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::Admin;
use crate::alerts::{AlertError, AlertView};
use crate::domain::validation::ValidationError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

impl From<AlertError> for ApiError {
    fn from(e: AlertError) -> Self {
        match &e {
            AlertError::NotFound => Self::not_found(e.to_string()),
            AlertError::Resolved => {
                Self::new(StatusCode::CONFLICT, "alert_resolved", e.to_string())
            }
            AlertError::Unavailable => {
                let mut api = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    e.to_string(),
                );
                api.retry_after = Some(std::time::Duration::from_secs(1));
                api
            }
            AlertError::Internal(err) => Self::internal(err.as_ref()),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// `firing`, `acknowledged` or `resolved` (all when left out).
    pub status: Option<String>,
    /// At most this many (1–500, default 100).
    pub limit: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "admin",
    security(("bearer" = [])),
    params(AlertQuery),
    responses(
        (status = 200, description = "Alerts, newest first", body = Vec<AlertView>),
        (status = 400, description = "`invalid_input`: an unknown status", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<AlertQuery>,
) -> Result<HttpResponse, ApiError> {
    let status = query.status.as_deref();
    if let Some(s) = status
        && !matches!(s, "firing" | "acknowledged" | "resolved")
    {
        return Err(
            ValidationError::new("status", "invalid", "firing, acknowledged or resolved").into(),
        );
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    Ok(HttpResponse::Ok().json(state.alerts.list(status, limit).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/ack",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Alert id")),
    responses(
        (status = 200, description = "Acknowledged (again, if it already was): no more repeats nor escalation; its resolution will still be sent", body = AlertView),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such alert", body = ErrorBody),
        (status = 409, description = "`alert_resolved`: the alert is resolved", body = ErrorBody),
        (status = 503, description = "`unavailable`: the alert router is restarting; retry after `Retry-After`", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn ack(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let view = state.alerts.ack(path.into_inner(), admin.0.user_id).await?;
    Ok(HttpResponse::Ok().json(view))
}
