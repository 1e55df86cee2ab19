//! `WsClient`: one actor per WebSocket connection.
//!
//! - Frames to the client go through the connection's [`Outlet`], in
//!   order: straight into actix-ws's session while nothing waits, else into
//!   a bounded queue its writer task feeds in. A client that lets
//!   `websocket.send_queue` frames pile up is closed with 4010 (slow
//!   consumer): memory per connection stays bounded.
//! - Live events do not pass through this actor: its thread's fan-out
//!   shard writes them into the outlet through the [`Subscription`] both
//!   share. The actor drives each subscription's log reads.
//! - Subscriptions are gap-free across reconnects. Subscribing registers
//!   with the shard *first*, then reads the log; live events that arrive
//!   meanwhile are held back, and released after the replay, minus what the
//!   replay already sent (offsets increase per topic, so "offset > last
//!   sent" is the whole rule). Nothing published while the replay ran is
//!   lost, and nothing is sent twice.

use super::frames::{ClientFrame, ServerFrame, account_of};
use super::hub::{HubEvent, Refused};
use super::outlet::{Out, Outlet, PushError, Pushed};
use super::{WsContext, close_code};
use crate::auth::{AuthError, Principal};
use crate::domain::Fault;
use crate::domain::validation::ValidationError;
use crate::metrics::ws::FrameKind;
use crate::outbox::{EnqueueError, NewMessage};
use crate::ratelimit::Key;
use actix::prelude::*;
use actix_ws::{CloseCode, CloseReason, Message, ProtocolError, Session};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// From the hub to every client.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum Control {
    /// The shard switched subscriptions to reading the log (it may have
    /// missed events): start reading.
    CatchUp,
    /// The send queue overflowed while the shard delivered.
    SlowConsumer,
    /// The service is stopping: close with 1001.
    Shutdown,
    /// The topic's account was removed: its subscription ends.
    TopicGone(String),
}

/// One subscription of one connection: shared by the connection's actor
/// and its thread's fan-out [`Shard`](super::hub::Shard), which writes live
/// events straight into the connection's send queue (both run on the
/// connection's thread, so the lock is never contended).
pub struct Subscription {
    state: std::sync::Mutex<SubState>,
    out: Arc<Outlet>,
    /// The connection's actor.
    addr: Recipient<Control>,
    /// Held events beyond this many are dropped and read from the log
    /// instead (a busy topic during a long replay).
    held_cap: usize,
}

struct SubState {
    /// The last offset written (or queued) to the client for this topic.
    last: i64,
    mode: Mode,
    /// The send queue overflowed; the actor was told.
    slow: bool,
}

enum Mode {
    /// Live events go straight to the send queue.
    Live,
    /// The log is being read (or is about to be): live events are held
    /// back meanwhile.
    Reading {
        held: Vec<Arc<HubEvent>>,
        /// Events may have been missed (or the held ones overflowed) while
        /// the log was read: read it once more before going live.
        again: bool,
    },
}

impl Subscription {
    pub(super) fn new(
        out: Arc<Outlet>,
        addr: Recipient<Control>,
        last: i64,
        held_cap: usize,
    ) -> Self {
        Self {
            state: std::sync::Mutex::new(SubState {
                last,
                mode: Mode::Reading {
                    held: Vec::new(),
                    again: false,
                },
                slow: false,
            }),
            out,
            addr,
            held_cap,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SubState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn addr(&self) -> &Recipient<Control> {
        &self.addr
    }

    /// A committed event of this subscription's topic (from the shard).
    pub(super) fn deliver(&self, event: &Arc<HubEvent>) -> Delivered {
        let mut st = self.state();
        let st = &mut *st;
        match &mut st.mode {
            Mode::Reading { held, again } => {
                if *again {
                    // The log is read again anyway.
                } else if held.len() >= self.held_cap {
                    held.clear();
                    *again = true;
                } else {
                    held.push(event.clone());
                }
                Delivered::Sent
            }
            Mode::Live => {
                if event.offset <= st.last || st.slow {
                    return Delivered::Sent;
                }
                st.last = event.offset;
                let out = Out::Text(
                    event.frame.clone(),
                    Some(event.created_at),
                    FrameKind::Event,
                );
                match self.out.push(out) {
                    Ok(Pushed::Sent) => Delivered::Sent,
                    Ok(Pushed::Queued) => Delivered::Queued,
                    Err(PushError::Full) => {
                        st.slow = true;
                        self.addr.do_send(Control::SlowConsumer);
                        Delivered::Queued
                    }
                    // The connection is over (its actor unsubscribes, or
                    // died without doing so).
                    Err(PushError::Closed) => Delivered::Gone,
                }
            }
        }
    }

    /// Test view: `None` when live, else the offsets held back and whether
    /// the log is to be read again.
    #[cfg(test)]
    pub(super) fn reading(&self) -> Option<(Vec<i64>, bool)> {
        match &self.state().mode {
            Mode::Live => None,
            Mode::Reading { held, again } => {
                Some((held.iter().map(|e| e.offset).collect(), *again))
            }
        }
    }

    /// Test setup: live from `last` on, as after a finished replay.
    #[cfg(test)]
    pub(super) fn go_live(&self) {
        self.state().mode = Mode::Live;
    }

    /// The shard may have missed events: a live subscription switches to
    /// reading the log (answers true: its actor must start reading); one
    /// reading already reads once more.
    pub(super) fn read_log(&self) -> bool {
        let mut st = self.state();
        match &mut st.mode {
            Mode::Live => {
                st.mode = Mode::Reading {
                    held: Vec::new(),
                    again: false,
                };
                true
            }
            Mode::Reading { again, .. } => {
                *again = true;
                false
            }
        }
    }
}

/// What became of a delivery.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Delivered {
    /// Written, held back, or not needed.
    Sent,
    /// Queued behind a full session: the connection's thread must let its
    /// HTTP dispatcher write before more comes.
    Queued,
    /// The connection is closed.
    Gone,
}

/// The actor's side of a subscription.
struct Sub {
    shared: Arc<Subscription>,
    /// The task reading the log (or releasing held events), cancelled when
    /// the subscription goes.
    task: Option<SpawnHandle>,
    /// Which task is current: a finished task that is not is ignored.
    generation: u64,
}

pub struct WsClient {
    id: u64,
    cx: Arc<WsContext>,
    outlet: Arc<Outlet>,
    writer: Option<tokio::task::JoinHandle<()>>,
    /// This thread's fan-out shard (set when the actor starts).
    shard: Option<Arc<super::hub::Shard>>,
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
        header_auth: Option<(SecretString, Result<Principal, AuthError>)>,
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

    fn text(&mut self, ctx: &mut Context<Self>, frame: &ServerFrame<'_>, kind: FrameKind) {
        self.push(ctx, Out::Text(frame.to_text().into(), None, kind));
    }

    fn error(
        &mut self,
        ctx: &mut Context<Self>,
        id: &Value,
        code: &str,
        message: &str,
        retry_after: Option<Duration>,
    ) {
        let fault = crate::metrics::ws::error_fault(code);
        self.error_by(ctx, id, code, message, retry_after, fault);
    }

    /// An error frame whose fault its sender knows.
    fn error_by(
        &mut self,
        ctx: &mut Context<Self>,
        id: &Value,
        code: &str,
        message: &str,
        retry_after: Option<Duration>,
        fault: Fault,
    ) {
        self.cx.hub.metrics().error(code, fault);
        let frame = ServerFrame::Error {
            id,
            code,
            message,
            retry_after_ms: retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            field: None,
        };
        self.text(ctx, &frame, FrameKind::Error);
    }

    fn invalid(&mut self, ctx: &mut Context<Self>, id: &Value, e: &ValidationError) {
        self.cx.hub.metrics().error("invalid_input", Fault::Client);
        let message = e.to_string();
        let frame = ServerFrame::Error {
            id,
            code: "invalid_input",
            message: &message,
            retry_after_ms: None,
            field: Some(e.field),
        };
        self.text(ctx, &frame, FrameKind::Error);
    }

    /// Queues a frame; a full queue means a slow consumer.
    fn push(&mut self, ctx: &mut Context<Self>, out: Out) {
        if self.closing.is_some() {
            return;
        }
        match self.outlet.push(out) {
            Ok(_) => {}
            Err(PushError::Full) => self.slow_consumer(ctx),
            Err(PushError::Closed) => {
                self.closing = Some("client");
                ctx.stop();
            }
        }
    }

    /// Closes with `code` after the frames already queued.
    fn close(&mut self, ctx: &mut Context<Self>, code: u16, reason: &'static str, message: &str) {
        if self.closing.is_some() {
            return;
        }
        let close = CloseReason {
            code: CloseCode::from(code),
            description: Some(message.to_owned()),
        };
        if self.outlet.push(Out::Close(Some(close.clone()))) == Err(PushError::Full) {
            self.abort_writer(close);
        }
        self.closing = Some(reason);
        ctx.stop();
    }

    /// The client does not read fast enough: what is queued for it is
    /// dropped and it is closed with 4010.
    fn slow_consumer(&mut self, ctx: &mut Context<Self>) {
        if self.closing.is_some() {
            return;
        }
        self.abort_writer(CloseReason {
            code: CloseCode::from(close_code::SLOW_CONSUMER),
            description: Some("slow consumer: frames were not read in time".to_owned()),
        });
        self.closing = Some("slow_consumer");
        ctx.stop();
    }

    /// Stops the writer and sends the close frame past its queue (bounded
    /// in time: a client that reads nothing is simply dropped).
    fn abort_writer(&mut self, close: CloseReason) {
        if let Some(w) = self.writer.take() {
            w.abort();
        }
        let session = self.outlet.abort();
        actix_rt::spawn(async move {
            let _ = tokio::time::timeout(CLOSE_GRACE, session.close(Some(close))).await;
        });
    }

    fn authenticated(&mut self, ctx: &mut Context<Self>, principal: Principal) {
        if let Some(ip) = self.unauthenticated_ip.take() {
            self.cx.hub.release_unauthenticated(ip);
        }
        if self.cx.hub.admit_user(principal.user_id).is_err() {
            let limit = self.cx.settings.rate_limits.websocket.connections.per_user;
            self.too_many(
                ctx,
                &format!("too many connections for this user (at most {limit})"),
                Fault::Client,
            );
            return;
        }
        // The token's expiry ends the connection.
        let now = chrono::Utc::now().timestamp();
        let left = Duration::from_secs(u64::try_from(principal.expires_at - now).unwrap_or(0));
        ctx.run_later(left, |act, ctx| {
            act.error(
                ctx,
                &Value::Null,
                "token_expired",
                "the token expired",
                None,
            );
            act.close(
                ctx,
                close_code::UNAUTHORIZED,
                "unauthorized",
                "token expired",
            );
        });
        let frame = ServerFrame::AuthOk {
            user_id: principal.user_id,
            connection_id: self.id,
        };
        self.principal = Some(principal);
        self.text(ctx, &frame, FrameKind::Reply);
    }

    /// An error frame saying which connection limit, then 4009. `fault`:
    /// a client's own limit, or the service's (`at_capacity`).
    fn too_many(&mut self, ctx: &mut Context<Self>, message: &str, fault: Fault) {
        let code = "too_many_connections";
        self.error_by(ctx, &Value::Null, code, message, None, fault);
        let reason = if fault == Fault::Server {
            "at_capacity"
        } else {
            code
        };
        self.close(
            ctx,
            close_code::TOO_MANY_CONNECTIONS,
            reason,
            "too many connections",
        );
    }

    /// A frame other than `auth` before authentication: close 4001.
    fn close_unauthenticated(&mut self, ctx: &mut Context<Self>) {
        self.close(
            ctx,
            close_code::UNAUTHORIZED,
            "unauthorized",
            "authenticate first",
        );
    }

    fn unauthorized(&mut self, ctx: &mut Context<Self>, e: &AuthError) {
        // The token could not be checked (the database failed): the
        // service's fault, whatever the frame says.
        let (message, fault, reason) = match e {
            AuthError::Internal(_) => (
                "authentication failed".to_owned(),
                Fault::Server,
                "internal",
            ),
            other => (other.to_string(), Fault::Client, "unauthorized"),
        };
        self.error_by(ctx, &Value::Null, "unauthorized", &message, None, fault);
        self.close(ctx, close_code::UNAUTHORIZED, reason, "unauthorized");
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        if let Err(t) = self.cx.limiter.check(&Key::ws_messages(self.id)) {
            let limit = &self.cx.settings.rate_limits.websocket.messages;
            let message = format!(
                "more than {} frames in {} s",
                limit.max,
                limit.window_ms / 1000
            );
            self.error(
                ctx,
                &Value::Null,
                "rate_limited",
                &message,
                Some(t.retry_after),
            );
            self.close(
                ctx,
                close_code::POLICY,
                "rate_limited",
                "rate limit exceeded",
            );
            return;
        }
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(f) => f,
            Err(e) => {
                // The id, when the frame has one, so the client can match it.
                let id = serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|v| v.get("id").cloned())
                    // An id that could not come back as it was sent is not echoed.
                    .filter(crate::ws::frames::valid_request_id)
                    .unwrap_or(Value::Null);
                let message = format!("invalid frame: {}", strip_position(&e.to_string()));
                self.error(ctx, &id, "invalid_frame", &message, None);
                if self.principal.is_none() {
                    self.close_unauthenticated(ctx);
                }
                return;
            }
        };
        let Some(principal) = self.principal.clone() else {
            match frame {
                ClientFrame::Auth { token } => self.auth_frame(ctx, token),
                _ => {
                    self.error(
                        ctx,
                        &Value::Null,
                        "unauthorized",
                        "authenticate first: an auth frame or an Authorization header",
                        None,
                    );
                    self.close_unauthenticated(ctx);
                }
            }
            return;
        };
        match frame {
            ClientFrame::Auth { .. } => {
                self.error(
                    ctx,
                    &Value::Null,
                    "already_authenticated",
                    "already authenticated",
                    None,
                );
            }
            ClientFrame::Ping { id } => {
                self.text(ctx, &ServerFrame::Pong { id: &id }, FrameKind::Reply)
            }
            ClientFrame::Subscribe { id, topic, since } => {
                self.subscribe(ctx, &principal, id, topic, since);
            }
            ClientFrame::Unsubscribe { id, topic } => {
                if self.end_subscription(ctx, &topic) {
                    self.text(
                        ctx,
                        &ServerFrame::Unsubscribed {
                            id: &id,
                            topic: &topic,
                        },
                        FrameKind::Reply,
                    );
                } else {
                    self.error(
                        ctx,
                        &id,
                        "not_subscribed",
                        "not subscribed to this topic",
                        None,
                    );
                }
            }
            ClientFrame::Send {
                id,
                account,
                chat,
                text,
                idempotency_key,
                reply_to,
                silent,
            } => {
                let request = SendRequest {
                    account,
                    chat,
                    text,
                    idempotency_key,
                    reply_to,
                    silent,
                };
                self.send(ctx, &principal, id, request);
            }
        }
    }

    fn auth_frame(&mut self, ctx: &mut Context<Self>, token: String) {
        let auth = self.cx.auth.clone();
        let token = SecretString::from(token);
        self.token = Some(token.clone());
        // Frames after this one wait for the answer.
        ctx.wait(
            async move { auth.authenticate(token.expose_secret()).await }
                .into_actor(self)
                .map(|res, act, ctx| match res {
                    Ok(p) => act.authenticated(ctx, p),
                    Err(e) => act.unauthorized(ctx, &e),
                }),
        );
    }

    /// Checks the connection's token again (the cached path: no database
    /// round trip unless the cache expired); a revoked one ends it.
    fn recheck_token(&mut self, ctx: &mut Context<Self>) {
        let (Some(token), Some(_)) = (self.token.clone(), self.principal.as_ref()) else {
            return;
        };
        let auth = self.cx.auth.clone();
        ctx.spawn(
            async move { auth.authenticate(token.expose_secret()).await }
                .into_actor(self)
                .map(|res, act, ctx| match res {
                    Ok(_) | Err(AuthError::Internal(_)) => {}
                    Err(e) => act.unauthorized(ctx, &e),
                }),
        );
    }

    fn subscribe(
        &mut self,
        ctx: &mut Context<Self>,
        principal: &Principal,
        id: Value,
        topic: String,
        since: Option<i64>,
    ) {
        let Some(account_id) = account_of(&topic) else {
            self.error(ctx, &id, "invalid_topic", "topics are account:<id>", None);
            return;
        };
        if self.subs.contains_key(&topic) {
            self.error(
                ctx,
                &id,
                "already_subscribed",
                "already subscribed to this topic",
                None,
            );
            return;
        }
        if since.is_some_and(|s| s < 0) {
            self.error(
                ctx,
                &id,
                "invalid_offset",
                "since must be an offset (0 or more) or null",
                None,
            );
            return;
        }
        let accounts = self.cx.accounts.clone();
        let user = principal.user_id;
        // The ownership check holds back later frames (an unsubscribe must
        // not overtake its subscribe).
        ctx.wait(
            async move { accounts.owned(user, account_id).await }
                .into_actor(self)
                .map(move |owned, act, ctx| match owned {
                    Ok(_) => act.start_subscription(ctx, id, topic, since),
                    Err(crate::accounts::AccountError::NotFound) => {
                        act.error(ctx, &id, "not_found", "no such account", None);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "ws subscribe: checking the account failed");
                        act.error(ctx, &id, "internal", "internal error", None);
                    }
                }),
        );
    }

    /// Registers with the hub, then replays from the log.
    fn start_subscription(
        &mut self,
        ctx: &mut Context<Self>,
        id: Value,
        topic: String,
        since: Option<i64>,
    ) {
        if self.closing.is_some() || self.subs.contains_key(&topic) {
            return;
        }
        let Some(shard) = self.shard.clone() else {
            return;
        };
        let held_cap = 4 * self.cx.settings.websocket.send_queue.max(1) as usize;
        let shared = Arc::new(Subscription::new(
            self.outlet.clone(),
            ctx.address().recipient(),
            since.unwrap_or(0),
            held_cap,
        ));
        shard.subscribe(&topic, self.id, shared.clone());
        self.subs.insert(
            topic.clone(),
            Sub {
                shared,
                task: None,
                generation: 0,
            },
        );
        let replay = self.replay(topic.clone());
        self.run(ctx, &topic, replay.subscribe(id, since));
    }

    fn replay(&self, topic: String) -> Replay {
        let cap = self.cx.settings.websocket.send_queue.max(1) as usize;
        Replay {
            db: self.cx.db.clone(),
            gate: self.cx.replays.clone(),
            out: self.outlet.clone(),
            topic,
            page: u64::from(self.cx.settings.websocket.replay_page.max(1)),
            // Room a replay leaves in the queue for pings, replies and live
            // events of other topics (a replay can wait; they cannot).
            headroom: (cap / 4).max(1).min(cap.saturating_sub(1)),
        }
    }

    /// Runs `task` as `topic`'s current log task.
    fn run(
        &mut self,
        ctx: &mut Context<Self>,
        topic: &str,
        task: impl std::future::Future<Output = ReplayResult> + 'static,
    ) {
        self.generation += 1;
        let generation = self.generation;
        let handle = ctx.spawn(
            task.into_actor(self)
                .map(move |res, act, ctx| act.replayed(ctx, generation, res)),
        );
        if let Some(sub) = self.subs.get_mut(topic) {
            if let Some(old) = sub.task.replace(handle) {
                ctx.cancel_future(old);
            }
            sub.generation = generation;
        }
    }

    /// Ends a subscription (its log task too); answers whether there was one.
    fn end_subscription(&mut self, ctx: &mut Context<Self>, topic: &str) -> bool {
        let Some(sub) = self.subs.remove(topic) else {
            return false;
        };
        if let Some(task) = sub.task {
            ctx.cancel_future(task);
        }
        if let Some(shard) = &self.shard {
            shard.unsubscribe(topic, self.id);
        }
        true
    }

    /// A log task finished. Live events stop being held back once the log
    /// has been read and what was held meanwhile has been written.
    fn replayed(&mut self, ctx: &mut Context<Self>, generation: u64, res: ReplayResult) {
        let topic = match &res {
            ReplayResult::Closed => {
                self.closing.get_or_insert("client");
                ctx.stop();
                return;
            }
            ReplayResult::Done { topic, .. }
            | ReplayResult::Resync { topic }
            | ReplayResult::Failed { topic, .. } => topic.clone(),
        };
        let Some(sub) = self.subs.get_mut(&topic) else {
            return;
        };
        if sub.generation != generation {
            return;
        }
        sub.task = None;
        let last = match res {
            ReplayResult::Done { last, .. } => last,
            ReplayResult::Resync { .. } => {
                self.end_subscription(ctx, &topic);
                self.close(
                    ctx,
                    close_code::RESYNC_REQUIRED,
                    "resync_required",
                    "offset no longer in history",
                );
                return;
            }
            ReplayResult::Failed { error, .. } => {
                tracing::error!(error = %error, "ws replay: reading the event log failed");
                self.end_subscription(ctx, &topic);
                let message = format!("could not read the history of {topic}; subscribe again");
                self.error(ctx, &Value::Null, "internal", &message, None);
                return;
            }
            ReplayResult::Closed => return,
        };
        let next = {
            let mut st = sub.shared.state();
            st.last = st.last.max(last);
            let from = st.last;
            match &mut st.mode {
                // Held events stay held; the log has them too.
                Mode::Reading { again, .. } if *again => {
                    *again = false;
                    Next::Pages(from)
                }
                Mode::Reading { held, .. } => {
                    let mut pending = Vec::new();
                    let mut upto = from;
                    for e in std::mem::take(held) {
                        if e.offset > upto {
                            upto = e.offset;
                            pending.push(e);
                        }
                    }
                    if pending.is_empty() {
                        st.mode = Mode::Live;
                        Next::Live
                    } else {
                        // Written at the client's pace, still holding newer
                        // events; then look again.
                        Next::Release(pending)
                    }
                }
                Mode::Live => Next::Live,
            }
        };
        match next {
            Next::Live => {}
            Next::Pages(from) => {
                let task = self.replay(topic.clone()).pages(from);
                self.run(ctx, &topic, task);
            }
            Next::Release(pending) => {
                let task = self.replay(topic.clone()).release(pending);
                self.run(ctx, &topic, task);
            }
        }
    }

    /// Subscriptions the shard switched to reading the log start reading
    /// it from their last offset (the shard may have missed events).
    fn catch_up(&mut self, ctx: &mut Context<Self>) {
        let mut idle = Vec::new();
        for (topic, sub) in &self.subs {
            if sub.task.is_some() {
                // Reading already; the shard asked for once more.
                continue;
            }
            let mut st = sub.shared.state();
            match &mut st.mode {
                Mode::Live => {
                    st.mode = Mode::Reading {
                        held: Vec::new(),
                        again: false,
                    };
                }
                // The read starts after every lag that asked for it.
                Mode::Reading { again, .. } => *again = false,
            }
            idle.push((topic.clone(), st.last));
        }
        for (topic, last) in idle {
            let replay = self.replay(topic.clone());
            self.run(ctx, &topic, replay.pages(last));
        }
    }

    fn send(&mut self, ctx: &mut Context<Self>, principal: &Principal, id: Value, r: SendRequest) {
        let msg = match r.validate(principal.user_id) {
            Ok(m) => m,
            Err(e) => {
                self.invalid(ctx, &id, &e);
                return;
            }
        };
        // The same per-user limit as POST /messages.
        if let Err(t) = self.cx.limiter.check(&Key::api(principal.user_id)) {
            self.error(
                ctx,
                &id,
                "rate_limited",
                "too many requests; retry after the time given",
                Some(t.retry_after),
            );
            return;
        }
        let outbox = self.cx.outbox.clone();
        ctx.spawn(
            async move { outbox.enqueue(msg).await }
                .into_actor(self)
                .map(move |res, act, ctx| match res {
                    Ok(a) => {
                        let frame = ServerFrame::Ack {
                            id: &id,
                            message_id: a.message_id,
                            status: a.status,
                            replayed: a.replayed,
                        };
                        act.text(ctx, &frame, FrameKind::Reply);
                    }
                    Err(e) => {
                        let message = match &e {
                            EnqueueError::Internal(err) => {
                                tracing::error!(error = %err, "ws send: the outbox failed");
                                "internal error".to_owned()
                            }
                            other => other.to_string(),
                        };
                        let (code, retry) = (e.code(), e.retry_after());
                        act.error(ctx, &id, code, &message, retry);
                    }
                }),
        );
    }
}

/// What a subscription does after a log task.
enum Next {
    Live,
    Pages(i64),
    Release(Vec<Arc<HubEvent>>),
}

/// A `send` frame's fields.
struct SendRequest {
    account: i64,
    chat: String,
    text: String,
    idempotency_key: Option<String>,
    reply_to: Option<i32>,
    silent: bool,
}

impl SendRequest {
    /// The same checks as `POST /accounts/{id}/messages`.
    fn validate(self, user_id: i64) -> Result<NewMessage, ValidationError> {
        NewMessage::validated(
            self.account,
            user_id,
            &self.chat,
            self.text,
            self.reply_to,
            self.silent,
            self.idempotency_key.as_deref(),
        )
    }
}

/// serde's "at line 1 column 17" says nothing to a client of a one-line frame.
fn strip_position(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

/// How long a close frame may take to go out past a stuck queue.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long a stopped connection's writer may take to write what was queued.
const WRITER_GRACE: Duration = Duration::from_secs(5);

impl Actor for WsClient {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let metrics = self.cx.hub.metrics().clone();
        metrics.connects.inc();
        self.shard = Some(self.cx.hub.shard());
        let registered = self.cx.hub.register(self.id, ctx.address());
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
                let timeout = Duration::from_millis(self.cx.settings.websocket.auth_timeout_ms);
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
        let timeout = Duration::from_millis(ws.client_timeout_ms);
        ctx.run_interval(
            Duration::from_millis(ws.heartbeat_interval_ms),
            move |act, ctx| {
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
            },
        );
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

impl StreamHandler<Result<Message, ProtocolError>> for WsClient {
    fn handle(&mut self, msg: Result<Message, ProtocolError>, ctx: &mut Context<Self>) {
        if self.closing.is_some() {
            return;
        }
        self.last_heard = Instant::now();
        self.ping_outstanding = false;
        match msg {
            Ok(Message::Text(text)) => {
                self.cx.hub.metrics().messages_in.inc();
                self.on_text(ctx, &text);
            }
            Ok(Message::Binary(_) | Message::Continuation(_)) => {
                self.cx.hub.metrics().messages_in.inc();
                if self.cx.limiter.check(&Key::ws_messages(self.id)).is_err() {
                    self.close(
                        ctx,
                        close_code::POLICY,
                        "rate_limited",
                        "rate limit exceeded",
                    );
                    return;
                }
                self.error(
                    ctx,
                    &Value::Null,
                    "invalid_frame",
                    "JSON text frames only",
                    None,
                );
                if self.principal.is_none() {
                    self.close_unauthenticated(ctx);
                }
            }
            Ok(Message::Ping(bytes)) => self.push(ctx, Out::Pong(bytes)),
            Ok(Message::Pong(_) | Message::Nop) => {}
            Ok(Message::Close(reason)) => {
                let _ = self
                    .outlet
                    .push(Out::Close(Some(reason.unwrap_or(CloseReason {
                        code: CloseCode::Normal,
                        description: None,
                    }))));
                self.closing = Some("client");
                ctx.stop();
            }
            Err(ProtocolError::Overflow) => {
                let max = self.cx.settings.rate_limits.websocket.messages.max_size;
                let message = format!("frames are limited to {max} bytes");
                self.error(ctx, &Value::Null, "frame_too_large", &message, None);
                self.close(
                    ctx,
                    close_code::POLICY,
                    "frame_too_large",
                    "frame too large",
                );
            }
            Err(e) => {
                tracing::debug!(error = %e, connection_id = self.id, "ws protocol error");
                self.close(ctx, 1002, "protocol_error", "protocol error");
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.closing.get_or_insert("client");
        ctx.stop();
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

/// Reads a topic's log for one subscription, writing to its queue.
struct Replay {
    db: sea_orm::DatabaseConnection,
    /// Bounds the log reads of all connections at once.
    gate: Arc<tokio::sync::Semaphore>,
    out: Arc<Outlet>,
    topic: String,
    page: u64,
    /// Queue slots left free by every write of this task.
    headroom: usize,
}

enum ReplayResult {
    Done {
        topic: String,
        last: i64,
    },
    /// `since` is not in the log's history.
    Resync {
        topic: String,
    },
    Failed {
        topic: String,
        error: sea_orm::DbErr,
    },
    /// The connection's writer is gone.
    Closed,
}

/// The connection's writer is gone.
struct WriterGone;

impl Replay {
    /// Queues `out` once `headroom` slots would still be free after it: a
    /// replay goes at the pace the client reads, and never takes the room
    /// that pings, replies and live events need.
    async fn put(&self, out: Out) -> Result<(), WriterGone> {
        self.out
            .put(out, self.headroom)
            .await
            .map_err(|_| WriterGone)
    }

    /// A log read, once the gate lets it through: when every subscription
    /// catches up at once (a restarted pump, a lagging shard), the reads
    /// queue here instead of at the database's pool.
    async fn read<T>(
        &self,
        query: impl std::future::Future<Output = Result<T, sea_orm::DbErr>>,
    ) -> Result<T, sea_orm::DbErr> {
        // The gate is never closed; were it, reading unbounded is right.
        let _permit = self.gate.acquire().await.ok();
        query.await
    }

    /// `subscribed`, then the events after `since` (when given).
    async fn subscribe(self, id: Value, since: Option<i64>) -> ReplayResult {
        let head = match self.read(crate::events::head(&self.db, &self.topic)).await {
            Ok(h) => h,
            Err(error) => {
                return ReplayResult::Failed {
                    topic: self.topic,
                    error,
                };
            }
        };
        let horizon = match self
            .read(crate::events::horizon(&self.db, &self.topic))
            .await
        {
            Ok(h) => h,
            Err(error) => {
                return ReplayResult::Failed {
                    topic: self.topic,
                    error,
                };
            }
        };
        // Below the horizon, events the client missed are pruned; past the
        // head, the offset was not handed out by this log (a restored
        // backup, another deployment). Either way the client must resync.
        let recovered = since.is_none_or(|s| s >= horizon && s <= head);
        let frame = ServerFrame::Subscribed {
            id: &id,
            topic: &self.topic,
            offset: head,
            recovered,
        };
        if self
            .put(Out::Text(frame.to_text().into(), None, FrameKind::Reply))
            .await
            .is_err()
        {
            return ReplayResult::Closed;
        }
        match since {
            None => ReplayResult::Done {
                topic: self.topic,
                last: head,
            },
            Some(_) if !recovered => ReplayResult::Resync { topic: self.topic },
            Some(s) => self.pages(s).await,
        }
    }

    /// The events after `after`, page by page, until the log runs out.
    async fn pages(self, mut after: i64) -> ReplayResult {
        loop {
            let events = match self
                .read(crate::events::since(
                    &self.db,
                    &self.topic,
                    after,
                    self.page,
                ))
                .await
            {
                Ok(e) => e,
                Err(error) => {
                    return ReplayResult::Failed {
                        topic: self.topic,
                        error,
                    };
                }
            };
            // Pruned meanwhile, past where this replay stands: a gap.
            match self
                .read(crate::events::horizon(&self.db, &self.topic))
                .await
            {
                Ok(h) if h > after => return ReplayResult::Resync { topic: self.topic },
                Ok(_) => {}
                Err(error) => {
                    return ReplayResult::Failed {
                        topic: self.topic,
                        error,
                    };
                }
            }
            let full = events.len() as u64 == self.page;
            for e in events {
                after = e.offset;
                let frame = super::frames::event_frame(&e);
                if self
                    .put(Out::Text(frame.into(), None, FrameKind::Event))
                    .await
                    .is_err()
                {
                    return ReplayResult::Closed;
                }
            }
            if !full {
                return ReplayResult::Done {
                    topic: self.topic,
                    last: after,
                };
            }
        }
    }

    /// Live events held during a replay, in order.
    async fn release(self, events: Vec<Arc<HubEvent>>) -> ReplayResult {
        let mut last = 0;
        for e in events {
            last = e.offset;
            let out = Out::Text(e.frame.clone(), Some(e.created_at), FrameKind::Event);
            if self.put(out).await.is_err() {
                return ReplayResult::Closed;
            }
        }
        ReplayResult::Done {
            topic: self.topic,
            last,
        }
    }
}
