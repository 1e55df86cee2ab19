//! The health endpoints, from the HealthMonitor's checks (see
//! [`crate::health`]): 200 when healthy, 503 otherwise.
//! Every check runs under `health.check_timeout_ms`, so an endpoint
//! answers even when what it checks hangs.
//!
//! `/health` and its components are the diagnostic view, for people and
//! dashboards. Load balancers and orchestrators ask `/health/live` and
//! `/health/ready` instead (see [`crate::health::probes`]).

use super::AppState;
use super::error::ErrorBody;
use super::extract::Admin;
use actix_web::{HttpResponse, web};
use serde_json::json;

pub use crate::health::Status;

/// 200 when healthy, 503 otherwise, with `body` either way.
pub(super) fn answer(status: Status, body: impl serde::Serialize) -> HttpResponse {
    if status == Status::Healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    responses(
        (status = 200, description = "Every component healthy", content_type = "application/json"),
        (status = 503, description = "A component degraded or unhealthy (see `checks`, each with its `reason`)", content_type = "application/json"),
    )
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let report = state.health.report().await;
    answer(
        report.status,
        json!({
            "status": report.status,
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": state.started_at.elapsed().as_secs(),
            "checks": report.checks,
        }),
    )
}

#[utoipa::path(
    get,
    path = "/health/detailed",
    tag = "meta",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Healthy: uptime, memory, every check, the thresholds in force and the alerts firing", content_type = "application/json"),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 503, description = "Not healthy (the same body)", content_type = "application/json"),
    )
)]
pub async fn detailed(state: web::Data<AppState>, _admin: Admin) -> HttpResponse {
    let report = state.health.report().await;
    // The alerts come from the database: under the check timeout too, so a
    // hung database leaves them out rather than hanging the answer.
    let timeout = state.settings.health.check_timeout_ms;
    let alerts = &state.alerts;
    let list = |status| async move {
        tokio::time::timeout(timeout, alerts.list(Some(status), 100))
            .await
            .ok()
            .and_then(Result::ok)
    };
    let (alerts, acknowledged) = futures_util::join!(list("firing"), list("acknowledged"));
    let memory = report
        .checks
        .get("resources")
        .and_then(|c| c.detail.get("memory").cloned());
    answer(
        report.status,
        json!({
            "status": report.status,
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": state.started_at.elapsed().as_secs(),
            "memory": memory,
            "checks": report.checks,
            "thresholds": state.settings.thresholds,
            "alerts": { "firing": alerts, "acknowledged": acknowledged },
        }),
    )
}

/// One component's check as its endpoint answers it: `{status, metrics,
/// timestamp}`.
async fn component(state: &AppState, name: &str) -> HttpResponse {
    let Some(check) = state.health.check(name).await else {
        return HttpResponse::NotFound().finish();
    };
    answer(
        check.status,
        json!({
            "status": check.status,
            "reason": check.reason,
            "metrics": check.detail,
            "timestamp": chrono::Utc::now().to_rfc3339(),
        }),
    )
}

#[utoipa::path(
    get,
    path = "/health/telegram",
    tag = "meta",
    responses(
        (status = 200, description = "Healthy: message latency (mean, p95), DC latency per DC, FLOOD_WAITs in the last hour, migrations, message failure rate, accounts by state", content_type = "application/json"),
        (status = 503, description = "A `thresholds.telegram` level crossed, or accounts need their owner (see `reason`)", content_type = "application/json"),
    )
)]
pub async fn telegram(state: web::Data<AppState>) -> HttpResponse {
    component(&state, "telegram").await
}

#[utoipa::path(
    get,
    path = "/health/database",
    tag = "meta",
    responses(
        (status = 200, description = "Healthy: backend, ping latency, statement p95 over the window, pool", content_type = "application/json"),
        (status = 503, description = "The ping failed or timed out, statements were slow (p95 over `thresholds.response_time.database.query_time_ms`), or the pool is nearly used up (see `reason`)", content_type = "application/json"),
    )
)]
pub async fn database(state: web::Data<AppState>) -> HttpResponse {
    component(&state, "database").await
}

/// A probe's answer: 200 when it passes, 503 with its reasons otherwise.
fn probe(p: &crate::health::probes::Probe) -> HttpResponse {
    let mut res = if p.passes() {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    res.insert_header(actix_web::http::header::CacheControl(vec![
        actix_web::http::header::CacheDirective::NoStore,
    ]))
    .json(p)
}

#[utoipa::path(
    get,
    path = "/health/live",
    tag = "meta",
    responses(
        (status = 200, description = "Live: the process and its actor system answer (`{\"status\":\"live\",\"reasons\":[]}`). For liveness probes: a database outage or a slow Telegram is no reason to restart the process", content_type = "application/json"),
        (status = 503, description = "Not live (`{\"status\":\"not_live\",\"reasons\":[...]}`): the root supervisor gave up, or did not answer within `health.check_timeout_ms`. Restart the process", content_type = "application/json"),
    )
)]
pub async fn live(state: web::Data<AppState>) -> HttpResponse {
    probe(&state.health.live().await)
}

#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "meta",
    responses(
        (status = 200, description = "Ready to serve traffic (`{\"status\":\"ready\",\"reasons\":[]}`): live, not shutting down, every essential actor running, the database answering. For load balancers and readiness probes", content_type = "application/json"),
        (status = 503, description = "Not ready (`{\"status\":\"not_ready\",\"reasons\":[...]}`): shutting down (from SIGTERM, for `health.drain_ms` while still serving, so a balancer drains the instance), not live, an essential actor down or restarting, or the database not answering within `health.check_timeout_ms`. Send no traffic", content_type = "application/json"),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    probe(&state.health.ready().await)
}
