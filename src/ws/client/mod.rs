//! `WsClient`: one actor per WebSocket connection, its state and its
//! lifecycle (admission, the heartbeat, the hub's [`Control`] messages,
//! the cleanup when it stops).
//!
//! - Frames to the client go through the connection's [`Outlet`], in
//!   order: straight into actix-ws's session while nothing waits, else into
//!   a bounded queue its writer task feeds in. A client that lets
//!   `websocket.send_queue` frames pile up is closed with 4010 (slow
//!   consumer): memory per connection stays bounded.
//! - Live events do not pass through this actor: its thread's fan-out
//!   shard writes them into the outlet through the
//!   [`Subscription`](crate::ws::subscription::Subscription) both share.
//!   The actor drives each subscription's log reads (`subscribe.rs`); how
//!   they stay gap-free is told in [`crate::ws::subscription`].
//!
//! Its other files: `inbound.rs` handles the client's frames, `auth.rs`
//! authentication and the connection limits, `output.rs` what the actor
//! sends and how it closes.

mod auth;
mod inbound;
mod output;
mod subscribe;

use super::hub::Refused;
use super::outlet::{Out, Outlet};
use super::shard::Shard;
use super::subscription::Control;
use super::{HeaderAuth, WsContext, close_code};
use crate::auth::{AuthError, Principal};
use crate::domain::Fault;
use crate::ratelimit::Key;
use actix::prelude::*;
use actix_ws::Session;
use secrecy::SecretString;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use subscribe::Sub;
use tokio::time::Instant;

/// How long a stopped connection's writer may take to write what was queued.
const WRITER_GRACE: Duration = Duration::from_secs(5);

/// The actor of one connection.
pub struct WsClient {
    id: u64,
    cx: Arc<WsContext>,
    outlet: Arc<Outlet>,
    writer: Option<tokio::task::JoinHandle<()>>,
    /// This thread's fan-out shard (set when the actor starts).
    shard: Option<Arc<Shard>>,
    /// Set once authenticated (and admitted under the per-user limit).
    principal: Option<Principal>,
    /// The result of a header token, applied when the actor starts.
    header_auth: Option<Result<Principal, AuthError>>,
    /// The token the connection authenticated with: checked again every
    /// heartbeat, so a revoked token (logout-all, a demotion) ends it.
    token: Option<SecretString>,
    /// The client's address while it counts as waiting to authenticate.
    unauthenticated_ip: Option<std::net::IpAddr>,
    ip: Option<std::net::IpAddr>,
    subs: HashMap<String, Sub>,
    /// The generation of the latest log task started (see [`Sub`]).
    generation: u64,
    last_heard: Instant,
    /// A ping is queued or unanswered: no second one (pings must not pile
    /// up in the queue of a client that is slow to read).
    ping_outstanding: bool,
    /// Why the connection ended (a metric label), once decided.
    closing: Option<&'static str>,
}

impl WsClient {
    pub fn new(
        id: u64,
        cx: Arc<WsContext>,
        session: Session,
        ip: Option<std::net::IpAddr>,
        header_auth: Option<HeaderAuth>,
    ) -> Self {
        let (token, header_auth) = match header_auth {
            Some((token, result)) => (Some(token), Some(result)),
            None => (None, None),
        };
        let outlet = Arc::new(Outlet::new(
            session,
            cx.settings.websocket.send_queue as usize,
            cx.hub.metrics().clone(),
        ));
        let writer = actix_rt::spawn(super::outlet::write(outlet.clone()));
        Self {
            id,
            cx,
            outlet,
            writer: Some(writer),
            shard: None,
            principal: None,
            header_auth,
            token,
            unauthenticated_ip: None,
            ip,
            subs: HashMap::new(),
            generation: 0,
            last_heard: Instant::now(),
            ping_outstanding: false,
            closing: None,
        }
    }
}

impl Actor for WsClient {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let metrics = self.cx.hub.metrics().clone();
        metrics.connects.inc();
        self.shard = Some(self.cx.hub.shard());
        let registered = self.cx.hub.register(self.id, ctx.address().recipient());
        if registered == Err(Refused::ShuttingDown) {
            self.close(ctx, close_code::GOING_AWAY, "shutdown", "server going away");
            return;
        }
        if registered.is_err() {
            let total = self.cx.settings.rate_limits.websocket.connections.total;
            self.too_many(
                ctx,
                &format!("too many connections (at most {total})"),
                Fault::Server,
            );
            return;
        }
        match self.header_auth.take() {
            Some(Ok(p)) => self.authenticated(ctx, p),
            Some(Err(e)) => self.unauthorized(ctx, &e),
            None => {
                if let Some(ip) = self.ip {
                    let limit = self.cx.settings.websocket.unauthenticated_per_ip;
                    if self.cx.hub.admit_unauthenticated(ip, limit).is_err() {
                        self.too_many(
                            ctx,
                            &format!(
                                "too many connections waiting to authenticate from this address (at most {limit})"
                            ),
                            Fault::Client,
                        );
                        return;
                    }
                    self.unauthenticated_ip = Some(ip);
                }
                let timeout = self.cx.settings.websocket.auth_timeout_ms;
                ctx.run_later(timeout, |act, ctx| {
                    if act.principal.is_none() {
                        act.error(
                            ctx,
                            &Value::Null,
                            "unauthorized",
                            "no auth frame in time",
                            None,
                        );
                        act.close(
                            ctx,
                            close_code::UNAUTHORIZED,
                            "unauthorized",
                            "authentication timeout",
                        );
                    }
                });
            }
        }
        let ws = &self.cx.settings.websocket;
        let timeout = ws.client_timeout_ms;
        ctx.run_interval(ws.heartbeat_interval_ms, move |act, ctx| {
            if act.last_heard.elapsed() > timeout {
                act.close(
                    ctx,
                    close_code::POLICY,
                    "heartbeat_timeout",
                    "heartbeat timeout",
                );
            } else {
                if !act.ping_outstanding {
                    act.ping_outstanding = true;
                    act.push(ctx, Out::Ping);
                }
                act.recheck_token(ctx);
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(ip) = self.unauthenticated_ip.take() {
            self.cx.hub.release_unauthenticated(ip);
        }
        // The writer finishes what is queued and the close; a client that
        // reads nothing cannot keep it (and its frames) forever.
        self.outlet.finish();
        if let Some(writer) = self.writer.take() {
            let abort = writer.abort_handle();
            actix_rt::spawn(async move {
                tokio::time::sleep(WRITER_GRACE).await;
                abort.abort();
            });
        }
        let user = self.principal.as_ref().map(|p| p.user_id);
        self.cx.hub.release(self.id, user);
        if let Some(shard) = &self.shard {
            for topic in self.subs.keys() {
                shard.unsubscribe(topic, self.id);
            }
        }
        self.cx.limiter.forget_key(&Key::ws_messages(self.id));
        self.cx
            .hub
            .metrics()
            .disconnected(self.closing.unwrap_or("client"));
    }
}

impl Handler<Control> for WsClient {
    type Result = ();

    fn handle(&mut self, msg: Control, ctx: &mut Context<Self>) {
        match msg {
            Control::CatchUp => self.catch_up(ctx),
            Control::SlowConsumer => self.slow_consumer(ctx),
            Control::Shutdown => {
                self.close(ctx, close_code::GOING_AWAY, "shutdown", "server going away");
            }
            Control::TopicGone(topic) => {
                if self.end_subscription(ctx, &topic) {
                    let message = format!("{topic} was removed; its subscription ended");
                    self.error(ctx, &Value::Null, "topic_removed", &message, None);
                }
            }
        }
    }
}
