//! Rate limits as the API shows them: `GET /api/v1/accounts/{id}/limits`
//! (one account's keys and flood waits, for its owner) and
//! `GET /health/rate-limits` (every key, and flood waits against the
//! `thresholds.telegram.flood_wait` levels).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::Authenticated;
use super::health::Status;
use crate::ratelimit::{FloodRecord, KeyState};
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

/// One account's limits.
#[derive(Serialize, ToSchema)]
pub struct AccountLimits {
    pub account_id: i64,
    /// The account's keys (its chats' included) that hold state now.
    pub keys: Vec<KeyState>,
    /// FLOOD_WAITs the account met in the last hour, oldest first.
    pub flood_waits: Vec<FloodRecord>,
    pub flood_waits_last_hour: usize,
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{id}/limits",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Account id")),
    responses(
        (status = 200, description = "The account's rate-limit keys and last hour's flood waits", body = AccountLimits),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such account among the caller's", body = ErrorBody),
        (status = 429, description = "Over the caller's API limit", body = ErrorBody),
    )
)]
pub async fn account_limits(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    state.accounts.owned(caller.0.user_id, id).await?;
    let flood_waits = state.limiter.flood_waits(id);
    Ok(HttpResponse::Ok().json(AccountLimits {
        account_id: id,
        keys: state.limiter.snapshot(Some(id)),
        flood_waits_last_hour: flood_waits.len(),
        flood_waits,
    }))
}

/// `/health/rate-limits`.
#[derive(Serialize, ToSchema)]
pub struct RateLimitHealth {
    /// `healthy`, `degraded` (flood waits in the last hour above the
    /// warning level) or `unhealthy` (above the critical level).
    #[schema(value_type = String)]
    pub status: Status,
    /// Keys under a flood-wait block now.
    pub blocked_keys: usize,
    /// Flood waits met by all accounts in the last hour.
    pub flood_waits_last_hour: usize,
    pub keys: Vec<KeyState>,
}

#[utoipa::path(
    get,
    path = "/health/rate-limits",
    tag = "meta",
    responses(
        (status = 200, description = "Healthy or degraded", body = RateLimitHealth),
        (status = 503, description = "Unhealthy: flood waits in the last hour above the critical level", body = RateLimitHealth),
    )
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let keys = state.limiter.snapshot(None);
    let floods = state.limiter.flood_waits_last_hour();
    let levels = &state.settings.thresholds.telegram.flood_wait;
    // Counts stay far below 2^52, so the conversion is exact.
    let status = match floods as f64 {
        n if n > levels.critical => Status::Unhealthy,
        n if n > levels.warning => Status::Degraded,
        _ => Status::Healthy,
    };
    let body = RateLimitHealth {
        status,
        blocked_keys: keys.iter().filter(|k| k.blocked_until.is_some()).count(),
        flood_waits_last_hour: floods,
        keys,
    };
    if status == Status::Unhealthy {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}
