//! `/health`: 200 when healthy, 503 otherwise (the seed's rule), from the
//! supervision tree and the Database actor's last check.

use super::AppState;
use crate::supervisor::RunState;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    Degraded,
    Unhealthy,
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    responses(
        (status = 200, description = "Healthy", content_type = "application/json"),
        (status = 503, description = "Degraded or unhealthy (see `checks`)", content_type = "application/json"),
    )
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let tree = state.supervision.snapshot();
    let failure = state.supervision.root_failure();
    let down: Vec<&String> = tree
        .iter()
        .filter(|(_, s)| s.essential && s.state != RunState::Running)
        .map(|(path, _)| path)
        .collect();
    let supervision = if failure.is_some() {
        Status::Unhealthy
    } else if down.is_empty() {
        Status::Healthy
    } else {
        Status::Degraded
    };
    let db = state.db_health.get();
    let database = if db.up {
        Status::Healthy
    } else {
        Status::Unhealthy
    };
    let overall = supervision.max(database);
    let body = json!({
        "status": overall,
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started_at.elapsed().as_secs(),
        "checks": {
            "supervision": {
                "status": supervision,
                "actors": tree.len(),
                "not_running": down,
                "failure": failure,
            },
            "database": {
                "status": database,
                "backend": db.backend,
                "latency_ms": db.latency_ms,
                "pool": db.pool,
                "checked_at": db.checked_at,
                "error": db.error,
            },
        },
    });
    if overall == Status::Healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
