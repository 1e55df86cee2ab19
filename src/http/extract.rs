//! Request extractors: the authenticated caller and the client's IP.
//!
//! Authenticating a request also counts it against the caller's API limit
//! (`rate_limits.api.standard`, per user): over it, the request is answered
//! 429 with `Retry-After` before its handler runs.

use super::AppState;
use super::error::ApiError;
use crate::auth::{AuthError, Principal};
use crate::ratelimit::Key;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

/// The caller, authenticated by `Authorization: Bearer <token>`.
///
/// Tokens are accepted from that header only: never from the query string
/// (it ends up in proxies' and servers' logs) or a cookie (CSRF).
#[derive(Clone, Debug)]
pub struct Authenticated(pub Principal);

/// Like [`Authenticated`], and the caller must have the admin role.
#[derive(Clone, Debug)]
pub struct Admin(pub Principal);

fn bearer(req: &HttpRequest) -> Result<String, AuthError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::MissingToken)?
        .to_str()
        .map_err(|_| AuthError::MissingToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::MissingToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token.trim().to_owned())
}

/// The caller, authenticated, and within their API limit.
async fn authenticate(req: HttpRequest) -> Result<Principal, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(&StateMissing))?;
    let token = bearer(&req)?;
    let principal = state.auth.authenticate(&token).await?;
    state
        .limiter
        .check(&Key::api(principal.user_id))
        .map_err(|t| {
            ApiError::rate_limited(
                "too many requests; retry after the time given",
                t.retry_after,
            )
        })?;
    Ok(principal)
}

#[derive(Debug, thiserror::Error)]
#[error("application state is not registered")]
struct StateMissing;

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(req).await.map(Self) })
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let principal = authenticate(req.clone()).await?;
            if !principal.is_admin() {
                return Err(AuthError::Forbidden.into());
            }
            // The cached role may predate a demotion made elsewhere.
            if let Some(state) = req.app_data::<web::Data<AppState>>() {
                state.auth.require_admin(&principal).await?;
            }
            Ok(Self(principal))
        })
    }
}

/// The client's IP: the peer address, or, when the peer is a configured
/// trusted proxy, the nearest `X-Forwarded-For` entry that is not itself a
/// trusted proxy (read right to left across every header line, so a value
/// the client wrote cannot win). IPv4-mapped IPv6 addresses count as IPv4.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|t| t.to_canonical() == *ip);
    let peer = req.peer_addr().map(|a| a.ip().to_canonical())?;
    if !trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop.trim()) else {
            // Unparseable: the chain cannot be trusted beyond this point.
            break;
        };
        if !trusted(&ip) {
            return Some(ip);
        }
    }
    Some(peer)
}

/// An address from `X-Forwarded-For`: bare, `ip:port` or `[v6]:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

impl FromRequest for ClientIp {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trusted = req
            .app_data::<web::Data<AppState>>()
            .map_or(&[][..], |s| s.settings.server.trusted_proxies.as_slice());
        std::future::ready(Ok(Self(client_ip(req, trusted))))
    }
}
