//! The WebSocket gateway's HTTP side: `GET /ws`, which checks the upgrade
//! request and hands the connection to [`crate::ws::serve`], and
//! `GET /health/websocket`.

use super::AppState;
use super::error::ApiError;
use crate::auth::AuthError;
use crate::health::Status;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

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
        (status = 101, description = "Switching protocols: JSON text frames as docs/websocket-protocol.md describes. Authenticate with `Authorization: Bearer` on this request or an `auth` frame within 10 s"),
        (status = 400, description = "Not a WebSocket upgrade, or a token in the query string (`token_in_query`)", body = super::error::ErrorBody),
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
    let ip = super::extract::client_ip(&req, &cx.settings.server.trusted_proxies);
    crate::ws::serve(cx, session, stream, ip, header_auth);
    Ok(response)
}

fn bearer_token(value: &header::HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `/health/websocket`'s body: the verdict, the figures it was drawn from,
/// the thresholds they were held against, and when.
#[derive(serde::Serialize)]
struct WsHealthBody {
    status: Status,
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
    super::health::answer(status, body)
}
