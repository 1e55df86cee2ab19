//! Operator routes (admin role).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::Admin;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At most this many entries (1–500, default 100).
    pub limit: Option<u64>,
    /// Entries older than this id (for paging).
    pub before: Option<i64>,
}

/// One audit record.
#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: i64,
    pub created_at: chrono::DateTime<chrono::FixedOffset>,
    /// `user:<id>`, `anonymous`, `cli` or `system`.
    pub actor: String,
    /// `auth.login`, `auth.logout_all`, `account.add`, `keys.rotate`, …
    pub action: String,
    pub target: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    pub ip: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "admin",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "Audit entries, newest first", body = Vec<AuditEntryView>),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn audit(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let rows = crate::audit::recent(&state.db, limit, query.before)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let body: Vec<AuditEntryView> = rows
        .into_iter()
        .map(|r| AuditEntryView {
            id: r.id,
            created_at: r.created_at,
            actor: r.actor,
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            ip: r.ip,
            detail: r.detail,
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(
    get,
    path = "/api/v1/errors",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Errors grouped by kind and message shape, the most recently seen first: count, first and last seen, up to 5 redacted samples with their incident ids", body = Vec<crate::errors::ErrorGroup>),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn errors(state: web::Data<AppState>, _admin: Admin) -> HttpResponse {
    HttpResponse::Ok().json(state.metrics.errors.groups())
}
