//! The WebSocket gateway: `GET /ws` (ARCHITECTURE.md, "WebSocket protocol").
//!
//! One [`client::WsClient`] actor per connection, the [`hub::WsHub`] that
//! knows the connections and the topics they follow, and its supervised
//! pump ([`hub::WsHubActor`], root child `ws-hub`) that fans committed
//! events out.

pub mod client;
pub mod frames;
pub mod hub;
mod outlet;

use crate::accounts::AccountService;
use crate::auth::{AuthError, AuthService};
use crate::config::Settings;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::outbox::Outbox;
use crate::ratelimit::RateLimiter;
use actix::{Actor, AsyncContext};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use std::sync::Arc;

/// The protocol's close codes.
pub mod close_code {
    pub const GOING_AWAY: u16 = 1001;
    pub const UNAUTHORIZED: u16 = 4001;
    /// Policy or rate limit (also: frame too large, heartbeat timeout).
    pub const POLICY: u16 = 4008;
    pub const TOO_MANY_CONNECTIONS: u16 = 4009;
    pub const SLOW_CONSUMER: u16 = 4010;
    pub const RESYNC_REQUIRED: u16 = 4011;
}

/// What every connection reaches.
pub struct WsContext {
    pub settings: Arc<Settings>,
    pub hub: hub::WsHub,
    pub health: crate::health::websocket::WsHealth,
    pub auth: AuthService,
    pub accounts: AccountService,
    pub outbox: Outbox,
    pub limiter: RateLimiter,
    pub db: sea_orm::DatabaseConnection,
    /// Log reads (replays, catch-ups) running at once, across connections:
    /// half the database pool, so a catch-up of every connection leaves
    /// the rest of the service room.
    pub replays: Arc<tokio::sync::Semaphore>,
}

/// Query parameters that look like a credential: refused, since query
/// strings end up in proxies' and servers' logs.
const TOKEN_PARAMS: [&str; 5] = ["token", "access_token", "jwt", "auth", "authorization"];

/// `GET /ws`: upgrades, then speaks the protocol. Authentication problems
/// are answered inside the connection (an `error` frame and close 4001), so
/// browsers, which cannot read an HTTP status of a failed upgrade, see them.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "websocket",
    responses(
        (status = 101, description = "Switching protocols: JSON text frames as ARCHITECTURE.md describes. Authenticate with `Authorization: Bearer` on this request or an `auth` frame within 10 s"),
        (status = 400, description = "Not a WebSocket upgrade, or a token in the query string (`token_in_query`)", body = crate::http::error::ErrorBody),
    )
)]
pub async fn route(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let cx = state.ws.clone();
    let query_has_token = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| {
            q.iter()
                .any(|(k, _)| TOKEN_PARAMS.contains(&k.to_ascii_lowercase().as_str()))
        })
        .unwrap_or(false);
    if query_has_token {
        return Err(ApiError::bad_request(
            "token_in_query",
            "tokens are not accepted in the query string: send an Authorization: Bearer header or an auth frame",
        ));
    }
    let header_auth = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(match bearer_token(value) {
            Some(token) => (
                secrecy::SecretString::from(token.to_owned()),
                cx.auth.authenticate(token).await,
            ),
            None => (
                secrecy::SecretString::from(String::new()),
                Err(AuthError::MissingToken),
            ),
        }),
    };
    let (response, session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::bad_request("not_websocket", format!("not a WebSocket upgrade: {e}"))
    })?;
    let max = cx.settings.rate_limits.websocket.messages.max_size as usize;
    let stream = stream.max_frame_size(max);
    let id = cx.hub.next_id();
    let ip = crate::http::extract::client_ip(&req, &cx.settings.server.trusted_proxies);
    client::WsClient::create(move |ctx| {
        ctx.add_stream(stream);
        client::WsClient::new(id, cx, session, ip, header_auth)
    });
    Ok(response)
}

fn bearer_token(value: &header::HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `/health/websocket` (the seed's shape).
#[derive(serde::Serialize)]
struct WsHealthBody {
    status: crate::health::Status,
    metrics: crate::health::websocket::WsFigures,
    thresholds: crate::config::WsThresholds,
    timestamp: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(
    get,
    path = "/health/websocket",
    tag = "meta",
    responses(
        (status = 200, description = "Healthy: delivery latency, error rate and reconnect rate over the last 5 minutes are within `thresholds.websocket`", content_type = "application/json"),
        (status = 503, description = "Degraded or unhealthy", content_type = "application/json"),
    )
)]
pub async fn health_route(state: web::Data<AppState>) -> HttpResponse {
    let thresholds = state.settings.thresholds.websocket.clone();
    let (status, metrics) = state
        .ws
        .health
        .check(&thresholds, state.settings.health.min_volume);
    let body = WsHealthBody {
        status,
        metrics,
        thresholds,
        timestamp: chrono::Utc::now(),
    };
    if status == crate::health::Status::Healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
