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

/// One limit's keys, counted (the health route is public: no ids).
#[derive(Default, Serialize, ToSchema)]
pub struct LimitSummary {
    /// Keys with grants in their window or a block.
    pub active_keys: usize,
    /// Keys with no slot left in their window now.
    pub exhausted_keys: usize,
    /// Keys under a flood-wait block now.
    pub blocked_keys: usize,
    /// Decisions refused since the start (over the rate or blocked).
    pub throttled: u64,
}

/// Key summaries by area (Telegram, API, WebSocket), then by limit.
#[derive(Default, Serialize, ToSchema)]
pub struct RateLimitAreas {
    pub telegram: std::collections::BTreeMap<String, LimitSummary>,
    pub api: std::collections::BTreeMap<String, LimitSummary>,
    pub websocket: std::collections::BTreeMap<String, LimitSummary>,
}

/// `/health/rate-limits`: a status from the last hour's flood waits, and
/// the key summaries by area.
#[derive(Serialize, ToSchema)]
pub struct RateLimitHealth {
    /// `healthy`, `degraded` (flood waits in the last hour above
    /// `thresholds.telegram.flood_wait.warning`) or `unhealthy` (above critical).
    #[schema(value_type = String)]
    pub status: Status,
    pub metrics: RateLimitAreas,
    /// Decisions refused since the start, all limits.
    pub throttled: u64,
    /// Keys under a flood-wait block now.
    pub blocked_keys: usize,
    /// Flood waits met by all accounts in the last hour.
    pub flood_waits_last_hour: usize,
    pub timestamp: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(
    get,
    path = "/health/rate-limits",
    tag = "meta",
    responses(
        (status = 200, description = "Healthy", body = RateLimitHealth),
        (status = 503, description = "Degraded or unhealthy: flood waits in the last hour above the warning or critical level", body = RateLimitHealth),
    )
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    use crate::ratelimit::Limit;
    let keys = state.limiter.snapshot(None);
    let floods = state.limiter.flood_waits_last_hour();
    let levels = &state.settings.thresholds.telegram.flood_wait;
    // Counts stay far below 2^52, so the conversion is exact.
    let status = match floods as f64 {
        n if n > levels.critical => Status::Unhealthy,
        n if n > levels.warning => Status::Degraded,
        _ => Status::Healthy,
    };
    let decisions = &state.limiter.metrics().decisions;
    let mut metrics = RateLimitAreas::default();
    let mut throttled_total = 0;
    for limit in Limit::ALL {
        let of_limit = keys.iter().filter(|k| k.limit == limit);
        let throttled = ["throttled", "blocked"]
            .iter()
            .map(|r| decisions.with_label_values(&[limit.as_str(), r]).get())
            .sum();
        throttled_total += throttled;
        let summary = LimitSummary {
            active_keys: of_limit.clone().count(),
            exhausted_keys: of_limit.clone().filter(|k| k.remaining == 0).count(),
            blocked_keys: of_limit.filter(|k| k.blocked_until.is_some()).count(),
            throttled,
        };
        let area = match limit {
            Limit::AccountMessages
            | Limit::ChatMessages
            | Limit::MediaUploads
            | Limit::ChannelInvites => &mut metrics.telegram,
            Limit::ApiStandard | Limit::ApiAuth => &mut metrics.api,
            Limit::WsMessages => &mut metrics.websocket,
        };
        area.insert(limit.as_str().to_owned(), summary);
    }
    let body = RateLimitHealth {
        status,
        metrics,
        throttled: throttled_total,
        blocked_keys: keys.iter().filter(|k| k.blocked_until.is_some()).count(),
        flood_waits_last_hour: floods,
        timestamp: chrono::Utc::now(),
    };
    super::health::answer(status, body)
}
