//! The WebSocket gateway: the protocol a `GET /ws` connection speaks once
//! the HTTP surface has upgraded it (docs/websocket-protocol.md describes
//! the frames).
//!
//! One [`client::WsClient`] actor per connection, the [`hub::WsHub`] that
//! knows the connections and the topics they follow, and its supervised
//! pump ([`hub::WsHubActor`], root child `ws-hub`) that fans committed
//! events out.

mod client;
mod event;
pub mod frames;
pub mod hub;
mod outlet;
mod replay;
mod shard;
mod subscription;

use crate::accounts::AccountService;
use crate::auth::{AuthError, AuthService, Principal};
use crate::config::Settings;
use crate::outbox::Outbox;
use crate::ratelimit::RateLimiter;
use actix::{Actor, AsyncContext};
use secrecy::SecretString;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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

/// The token of an upgrade request's `Authorization` header (empty when
/// the header was no bearer token), and what checking it answered.
pub type HeaderAuth = (SecretString, Result<Principal, AuthError>);

/// Speaks the protocol on an upgraded connection: its frames are limited
/// to `rate_limits.websocket.messages.max_size`, and a new
/// [`client::WsClient`] actor serves it. `ip` is the client's address
/// (for the limit on connections waiting to authenticate); `header_auth`,
/// the upgrade request's token, when it had one.
pub fn serve(
    cx: Arc<WsContext>,
    session: actix_ws::Session,
    stream: actix_ws::MessageStream,
    ip: Option<std::net::IpAddr>,
    header_auth: Option<HeaderAuth>,
) {
    let max = cx.settings.rate_limits.websocket.messages.max_size as usize;
    let stream = stream.max_frame_size(max);
    let id = cx.hub.next_id();
    client::WsClient::create(move |ctx| {
        ctx.add_stream(stream);
        client::WsClient::new(id, cx, session, ip, header_auth)
    });
}

/// Locks `m`, poisoned or not: what the gateway's locks guard stays
/// consistent between statements.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
