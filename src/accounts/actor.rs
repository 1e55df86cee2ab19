//! `AccountActor`: one per active account, owning exactly one Telegram
//! client. It runs the account's state machine (see [`super::state`]),
//! persists the session as the client changes it, turns updates into durable
//! events (see [`super::updates`]), pings Telegram on the health-check
//! interval and rotates the session when it is due.
//!
//! Failure handling, by cause:
//! - a connect attempt that fails for a transient reason (network, timeout,
//!   flood wait) is retried inside the actor with backoff; the state stays
//!   `connecting` and says when the next attempt is;
//! - a connection that dies on its own (a dead grammers runner, a dropped
//!   link) is an abnormal exit: the supervisor restarts the actor with
//!   backoff, which rebuilds the client from the stored session;
//! - a session-fatal answer (unauthorized, revoked, banned, duplicate key)
//!   ends the actor normally in the matching state, releases its pool slot,
//!   and is not retried: the owner has to act.

use super::state::StateBoard;
use crate::domain::validation::ChatRef;
use crate::domain::{AccountState, RotationReason};
use crate::events::TopicWriter;
use crate::sessions::{SessionData, SessionStore};
use crate::supervisor::{Backoff, ExitSignal};
use crate::telegram::metrics::{Instrumented, TelegramMetrics};
use crate::telegram::{Backend, Client, Connection, Message, SessionSink, TgError};
use actix::prelude::*;
use async_trait::async_trait;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, mpsc};

/// Everything an AccountActor needs; shared by all of them.
pub struct AccountDeps {
    pub db: DatabaseConnection,
    pub store: SessionStore,
    pub backend: Arc<dyn Backend>,
    pub metrics: TelegramMetrics,
    pub board: StateBoard,
    /// The node's client slots: one per connected account, a share per user.
    pub pool: super::pool::ClientPool,
    pub request_timeout: Duration,
    pub health_check_interval: Duration,
    pub rotation_check_interval: Duration,
    /// How often at most the update state reached by updates that announce
    /// nothing is committed (see [`super::updates`]).
    pub update_sync_interval: Duration,
    pub max_session_age: Duration,
    pub session_error_threshold: u32,
    /// Accepted messages waiting to be sent; drained while connected.
    pub outbox: crate::outbox::Outbox,
    pub limiter: crate::ratelimit::RateLimiter,
    /// How long a resolved chat stays cached (`cache.default_ttl_ms`).
    pub peer_cache_ttl: Duration,
    /// Accounts whose actor ended for good (a state that needs the user):
    /// the account supervisor removes them from its `sessions` supervisor.
    pub released: mpsc::UnboundedSender<i64>,
}

/// Delays between connect attempts inside the actor.
fn connect_backoff() -> Backoff {
    Backoff {
        base: Duration::from_secs(1),
        factor: 2.0,
        cap: Duration::from_secs(60),
        jitter: 0.2,
    }
}

/// Why a call through the account could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the account is not connected (state: {0})")]
    NotConnected(AccountState),
    #[error(transparent)]
    Telegram(#[from] TgError),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Read a chat's recent messages.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Message>, CallError>")]
pub struct History {
    pub chat: ChatRef,
    pub limit: u32,
    /// Only messages older than this id (the next page).
    pub before: Option<i32>,
}

/// Upload one part of a file (Telegram's `saveFilePart`, or
/// `saveBigFilePart` when `total_parts` is given).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CallError>")]
pub struct SavePart {
    pub file_id: i64,
    /// 0-based.
    pub part: u32,
    pub total_parts: Option<u32>,
    pub bytes: actix_web::web::Bytes,
}

/// Rotate the account's session; answers the new session row id.
#[derive(Debug, Message)]
#[rtype(result = "Result<i64, CallError>")]
pub struct Rotate(pub RotationReason);

/// The account's current state.
#[derive(Debug, Message)]
#[rtype(result = "AccountState")]
pub struct GetState;

/// A Telegram error met by a background task (the outbox drain) that
/// concerns the whole account.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct AccountWideTgError(TgError);

/// The drain reports to the actor through its mailbox.
struct MailboxObserver(Addr<AccountActor>);

impl crate::outbox::drain::DrainObserver for MailboxObserver {
    fn account_error(&self, err: TgError) {
        self.0.do_send(AccountWideTgError(err));
    }
}

/// Writes session changes through to the encrypted store, and performs
/// rotations, one at a time: a rotation never races a write.
pub struct StoreSink {
    store: SessionStore,
    account_id: i64,
    session_id: AsyncMutex<i64>,
    home_dc: std::sync::atomic::AtomicI32,
    metrics: TelegramMetrics,
}

impl StoreSink {
    fn new(
        store: SessionStore,
        account_id: i64,
        session_id: i64,
        home_dc: i32,
        metrics: TelegramMetrics,
    ) -> Self {
        Self {
            store,
            account_id,
            session_id: AsyncMutex::new(session_id),
            home_dc: home_dc.into(),
            metrics,
        }
    }

    /// Re-encrypts the latest session into a new row (fresh nonce, active
    /// key), deactivating the old one in the same transaction.
    async fn rotate(&self) -> Result<i64, CallError> {
        let mut current = self.session_id.lock().await;
        let id = rotate_active(&self.store, self.account_id).await?;
        *current = id;
        Ok(id)
    }
}

#[async_trait]
impl SessionSink for StoreSink {
    async fn save(&self, data: &SessionData) -> anyhow::Result<()> {
        use std::sync::atomic::Ordering;
        let previous = self.home_dc.swap(data.home_dc, Ordering::Relaxed);
        if previous != data.home_dc {
            self.metrics.migrations.inc();
            tracing::info!(
                account_id = self.account_id,
                from = previous,
                to = data.home_dc,
                "home DC changed"
            );
        }
        let bytes = data.to_bytes();
        let session_id = self.session_id.lock().await;
        self.store
            .write(*session_id, self.account_id, &bytes)
            .await?;
        Ok(())
    }
}

pub struct AccountActor {
    id: i64,
    /// The user who owns the account: its client slot comes from their share.
    owner: i64,
    deps: Arc<AccountDeps>,
    writer: TopicWriter,
    exit: ExitSignal,
    state: AccountState,
    client: Option<Arc<dyn Client>>,
    sink: Option<Arc<StoreSink>>,
    permit: Option<super::pool::ClientSlot>,
    home_dc: i32,
    connect_attempt: u32,
    flood_generation: u64,
    flood_until: Option<tokio::time::Instant>,
    rng: SmallRng,
    peers: crate::outbox::drain::PeerCache,
}

impl AccountActor {
    pub fn new(
        id: i64,
        owner: i64,
        deps: Arc<AccountDeps>,
        writer: TopicWriter,
        exit: ExitSignal,
    ) -> Self {
        Self {
            id,
            owner,
            writer,
            exit,
            state: AccountState::Connecting,
            client: None,
            sink: None,
            permit: None,
            home_dc: 0,
            connect_attempt: 0,
            flood_generation: 0,
            flood_until: None,
            rng: SmallRng::from_rng(&mut rand::rng()),
            peers: crate::outbox::drain::peer_cache(deps.peer_cache_ttl),
            deps,
        }
    }

    /// Moves to `state`: the board and gauge at once, then the account row
    /// and an `account.state` event, in order with the account's other events.
    fn set_state(&mut self, state: AccountState, detail: serde_json::Value) {
        let write = crate::events::account_state_write(self.id, state.as_str());
        self.set_state_with(state, detail, write);
    }

    /// [`Self::set_state`] with `write` (which must set the state) committed
    /// alongside the event.
    fn set_state_with(
        &mut self,
        state: AccountState,
        detail: serde_json::Value,
        write: crate::events::SideWrite,
    ) {
        let previous = self.state;
        self.state = state;
        self.deps.board.set(self.id, state);
        if previous != state {
            tracing::info!(
                account_id = self.id,
                from = %previous,
                to = %state,
                "account state changed"
            );
        }
        let data = super::state::state_event(self.id, state, Some(previous), detail);
        let queued = self.writer.try_publish_with("account.state", data, write);
        self.settle(queued);
    }

    /// `connected`, recording the Telegram user id in the same transaction
    /// (so whoever sees the state sees the id).
    fn set_connected(&mut self, telegram_user_id: i64, detail: serde_json::Value) {
        let id = self.id;
        let state_write = crate::events::account_state_write(id, AccountState::Connected.as_str());
        let side: crate::events::SideWrite = Arc::new(move |txn| {
            let state_write = state_write.clone();
            Box::pin(async move {
                state_write(txn).await?;
                super::record_telegram_user(txn, id, telegram_user_id).await
            })
        });
        self.set_state_with(AccountState::Connected, detail, side);
    }

    /// Queues an event on the account's topic (see [`Self::settle`]).
    fn publish(&self, kind: &str, data: serde_json::Value) {
        let queued = self.writer.try_publish(kind, data);
        self.settle(queued);
    }

    /// Events are queued synchronously when there is room, so they keep the
    /// actor's order; a full queue is waited on in the background.
    fn settle(
        &self,
        queued: Result<
            (),
            futures_util::future::BoxFuture<'static, Result<(), crate::events::WriterClosed>>,
        >,
    ) {
        if let Err(pending) = queued {
            let id = self.id;
            actix::spawn(async move {
                if pending.await.is_err() {
                    tracing::warn!(account_id = id, "event dropped: the writer stopped");
                }
            });
        }
    }

    fn begin_connect(&mut self, ctx: &mut Context<Self>) {
        if self.permit.is_none() {
            match self.deps.pool.try_acquire(self.owner) {
                Ok(permit) => self.permit = Some(permit),
                Err(full) => {
                    self.set_state(
                        AccountState::Waiting,
                        serde_json::json!({ "reason": full.reason() }),
                    );
                    let (pool, owner) = (self.deps.pool.clone(), self.owner);
                    ctx.spawn(
                        actix::fut::wrap_future(async move { pool.acquire(owner).await }).map(
                            |permit, act: &mut Self, ctx| match permit {
                                Ok(p) => {
                                    act.permit = Some(p);
                                    act.begin_connect(ctx);
                                }
                                Err(_) => ctx.stop(), // the pool was closed: shutting down
                            },
                        ),
                    );
                    return;
                }
            }
        }
        if self.state != AccountState::Connecting || self.connect_attempt == 0 {
            self.set_state(AccountState::Connecting, serde_json::json!({}));
        }
        let deps = self.deps.clone();
        let id = self.id;
        let fut = async move {
            let loaded = deps
                .store
                .load_active(id)
                .await
                .map_err(|e| CallError::Internal(e.into()))?
                .ok_or(CallError::Telegram(TgError::Unauthorized))?;
            let data = SessionData::from_bytes(&loaded.plaintext)
                .map_err(|e| CallError::Internal(e.into()))?;
            // Catch up from what the account's events were committed with.
            let resume = super::update_state::load(&deps.db, id)
                .await
                .map_err(|e| CallError::Internal(e.into()))?;
            let home_dc = data.home_dc;
            let sink = Arc::new(StoreSink::new(
                deps.store.clone(),
                id,
                loaded.session_id,
                home_dc,
                deps.metrics.clone(),
            ));
            let conn = tokio::time::timeout(
                deps.request_timeout,
                deps.backend.connect(data, resume, sink.clone()),
            )
            .await
            .map_err(|_| TgError::Timeout(deps.request_timeout))??;
            let client = Instrumented::wrap(conn.client.clone(), deps.metrics.clone());
            let me = tokio::time::timeout(deps.request_timeout, client.get_me())
                .await
                .map_err(|_| TgError::Timeout(deps.request_timeout))??;
            Ok::<_, CallError>((conn, client, sink, me, home_dc))
        };
        ctx.spawn(
            actix::fut::wrap_future(fut).map(|res, act: &mut Self, ctx| match res {
                Ok((conn, client, sink, me, home_dc)) => {
                    act.on_connected(conn, client, sink, me, home_dc, ctx)
                }
                Err(e) => act.on_connect_failed(e, ctx),
            }),
        );
    }

    fn on_connected(
        &mut self,
        conn: Connection,
        client: Arc<dyn Client>,
        sink: Arc<StoreSink>,
        me: crate::telegram::Me,
        home_dc: i32,
        ctx: &mut Context<Self>,
    ) {
        self.connect_attempt = 0;
        self.client = Some(client);
        self.sink = Some(sink);
        self.home_dc = home_dc;
        let Connection {
            updates, closed, ..
        } = conn;
        // The pump ends by itself when the client is dropped or disconnected
        // (the update channel closes), after writing what it already took.
        let pump = super::updates::Pump {
            account_id: self.id,
            writer: self.writer.clone(),
            metrics: self.deps.metrics.clone(),
            quiet_interval: self.deps.update_sync_interval,
        };
        actix::spawn(pump.run(updates));
        ctx.spawn(
            actix::fut::wrap_future(closed)
                .map(|err, act: &mut Self, ctx| act.on_connection_lost(err, ctx)),
        );
        // The outbox drain lives as long as this connection (it is dropped
        // with the actor); what it was sending is tried again next time.
        if let Some(client) = self.client.clone() {
            let outbox = &self.deps.outbox;
            let drain = crate::outbox::drain::Drain {
                account_id: self.id,
                client,
                store: Arc::new(crate::outbox::drain::DbStore {
                    db: outbox.db().clone(),
                    writer: self.writer.clone(),
                }),
                arrivals: outbox.arrivals(self.id),
                limiter: self.deps.limiter.clone(),
                peers: self.peers.clone(),
                metrics: outbox.metrics().clone(),
                settings: outbox.settings().clone(),
                request_timeout: self.deps.request_timeout,
                observer: Arc::new(MailboxObserver(ctx.address())),
            };
            ctx.spawn(actix::fut::wrap_future(drain.run()));
        }
        self.set_connected(
            me.id,
            serde_json::json!({ "telegram_user_id": me.id, "dc": home_dc }),
        );
        // A flood wait met before a reconnect still holds (the limiter
        // outlives this actor): say so again.
        let account_key = crate::ratelimit::Key::account_messages(self.id);
        if let Some(until) = self.deps.limiter.blocked_until(&account_key) {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            self.flood_limited_for(left, ctx);
        }
    }

    fn on_connect_failed(&mut self, err: CallError, ctx: &mut Context<Self>) {
        if let CallError::Telegram(e) = &err
            && let Some(terminal) = e.fatal_state()
        {
            self.finish(terminal, e.code(), ctx);
            return;
        }
        let mut delay = connect_backoff().delay(self.connect_attempt, &mut self.rng);
        if let CallError::Telegram(TgError::FloodWait { seconds, .. }) = &err {
            delay = delay.max(Duration::from_secs(u64::from(*seconds)));
        }
        self.connect_attempt += 1;
        let code = match &err {
            CallError::Telegram(e) => e.code(),
            CallError::NotConnected(_) => "not_connected",
            CallError::Internal(e) => {
                tracing::error!(account_id = self.id, error = %e, "connecting failed");
                "internal"
            }
        };
        tracing::warn!(
            account_id = self.id,
            attempt = self.connect_attempt,
            error = code,
            retry_in_ms = delay.as_millis() as u64,
            "connecting to Telegram failed; will retry"
        );
        self.set_state(
            AccountState::Connecting,
            serde_json::json!({
                "error": code,
                "attempt": self.connect_attempt,
                "retry_in_ms": delay.as_millis() as u64,
            }),
        );
        ctx.run_later(delay, |act, ctx| act.begin_connect(ctx));
    }

    fn on_connection_lost(&mut self, err: TgError, ctx: &mut Context<Self>) {
        self.client = None;
        if let Some(terminal) = err.fatal_state() {
            self.finish(terminal, err.code(), ctx);
            return;
        }
        // A dead runner or link: an abnormal exit, so the supervisor rebuilds
        // the client from the stored session after its backoff.
        self.set_state(
            AccountState::Connecting,
            serde_json::json!({ "error": err.code(), "reason": "connection lost" }),
        );
        self.exit
            .fail(format!("telegram connection lost: {}", err.code()));
        ctx.stop();
    }

    /// Ends the actor in a state only the owner can leave.
    fn finish(&mut self, state: AccountState, reason: &str, ctx: &mut Context<Self>) {
        tracing::warn!(account_id = self.id, state = %state, reason, "account needs its owner");
        self.set_state(state, serde_json::json!({ "reason": reason }));
        self.publish(
            "account.alert",
            serde_json::json!({ "account_id": self.id, "state": state, "reason": reason }),
        );
        self.permit = None;
        let _ = self.deps.released.send(self.id);
        ctx.stop();
    }

    /// An account-wide FLOOD_WAIT longer than the short threshold puts the
    /// account in `flood_limited` until it passes (shorter ones are waited
    /// out without a state change).
    fn note_error(&mut self, err: &TgError, ctx: &mut Context<Self>) {
        if let Some(terminal) = err.fatal_state() {
            self.finish(terminal, err.code(), ctx);
            return;
        }
        let TgError::FloodWait { seconds, scope } = err else {
            return;
        };
        if !matches!(scope, crate::telegram::FloodScope::Account) {
            return; // a per-chat wait does not stop the account
        }
        let wait = Duration::from_secs(u64::from(*seconds));
        self.flood_limited_for(wait, ctx);
    }

    /// Shows the account as `flood_limited` for `wait` when that is longer
    /// than the short threshold (shorter waits are waited out silently).
    fn flood_limited_for(&mut self, wait: Duration, ctx: &mut Context<Self>) {
        if wait <= self.deps.limiter.short_wait_threshold() {
            return;
        }
        let seconds = wait.as_secs();
        let ends = tokio::time::Instant::now() + wait;
        if self.state == AccountState::FloodLimited && self.flood_until.is_some_and(|t| t >= ends) {
            return; // already limited at least that long
        }
        self.flood_until = Some(ends);
        self.flood_generation += 1;
        let generation = self.flood_generation;
        let until = chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        self.set_state(
            AccountState::FloodLimited,
            serde_json::json!({ "seconds": seconds, "until": until }),
        );
        ctx.run_later(wait, move |act, _| {
            if act.flood_generation == generation && act.state == AccountState::FloodLimited {
                act.set_state(AccountState::Connected, serde_json::json!({}));
            }
        });
    }

    fn connected_client(&self) -> Result<Arc<dyn Client>, CallError> {
        match (&self.client, self.state) {
            (Some(c), AccountState::Connected | AccountState::FloodLimited) => Ok(c.clone()),
            _ => Err(CallError::NotConnected(self.state)),
        }
    }

    fn health_check(&mut self, ctx: &mut Context<Self>) {
        let Ok(client) = self.connected_client() else {
            return;
        };
        let timeout = self.deps.request_timeout;
        let fut = async move {
            tokio::time::timeout(timeout, client.ping())
                .await
                .unwrap_or(Err(TgError::Timeout(timeout)))
        };
        ctx.spawn(
            actix::fut::wrap_future(fut).map(|res, act: &mut Self, ctx| match res {
                Ok(rtt) => {
                    act.deps
                        .metrics
                        .dc_latency
                        .with_label_values(&[&act.home_dc.to_string()])
                        .observe(rtt.as_secs_f64());
                }
                Err(e) => act.on_health_failure(e, ctx),
            }),
        );
    }

    fn on_health_failure(&mut self, err: TgError, ctx: &mut Context<Self>) {
        tracing::warn!(
            account_id = self.id,
            error = err.code(),
            "health check failed"
        );
        if err.fatal_state().is_some() {
            self.note_error(&err, ctx);
            return;
        }
        let store = self.deps.store.clone();
        let id = self.id;
        let fut = async move {
            let info = store.active_info(id).await.ok().flatten()?;
            store.record_error(info.session_id).await.ok()
        };
        ctx.spawn(
            actix::fut::wrap_future(fut).map(|count, act: &mut Self, ctx| {
                let threshold = act.deps.session_error_threshold;
                if count.is_some_and(|c| c > i32::try_from(threshold).unwrap_or(i32::MAX)) {
                    act.publish(
                        "account.alert",
                        serde_json::json!({
                            "account_id": act.id,
                            "reason": "session_unhealthy",
                            "errors": count,
                        }),
                    );
                    act.rotate_in_background(RotationReason::Errors, ctx);
                }
            }),
        );
    }

    /// The seed's rotation check: due when older than the maximum age or
    /// after more errors than the threshold.
    fn rotation_check(&mut self, ctx: &mut Context<Self>) {
        let store = self.deps.store.clone();
        let id = self.id;
        let max_age = self.deps.max_session_age;
        let threshold = i32::try_from(self.deps.session_error_threshold).unwrap_or(i32::MAX);
        let fut = async move {
            let info = store.active_info(id).await.ok().flatten()?;
            let age = chrono::Utc::now()
                .signed_duration_since(info.created_at)
                .to_std()
                .unwrap_or_default();
            if info.error_count > threshold {
                Some(RotationReason::Errors)
            } else if age >= max_age {
                Some(RotationReason::Age)
            } else {
                None
            }
        };
        ctx.spawn(
            actix::fut::wrap_future(fut).map(|due, act: &mut Self, ctx| {
                if let Some(reason) = due {
                    act.rotate_in_background(reason, ctx);
                }
            }),
        );
    }

    fn rotate_in_background(&mut self, reason: RotationReason, ctx: &mut Context<Self>) {
        let fut = self.rotate(reason);
        ctx.spawn(fut.map(|_, _, _| ()));
    }

    fn rotate(
        &mut self,
        reason: RotationReason,
    ) -> impl ActorFuture<Self, Output = Result<i64, CallError>> + use<> {
        let sink = self.sink.clone();
        let store = self.deps.store.clone();
        let id = self.id;
        let fut = async move {
            match sink {
                // Connected: through the sink, so no write races the rotation.
                Some(sink) => sink.rotate().await,
                None => rotate_active(&store, id).await,
            }
        };
        actix::fut::wrap_future(fut).map(move |res: Result<i64, CallError>, act: &mut Self, _| {
            match &res {
                Ok(session_id) => {
                    act.deps
                        .metrics
                        .rotations
                        .with_label_values(&[reason.as_str()])
                        .inc();
                    tracing::info!(
                        account_id = act.id,
                        session_id,
                        reason = reason.as_str(),
                        "session rotated"
                    );
                    act.publish(
                        "session.rotated",
                        serde_json::json!({
                            "account_id": act.id,
                            "session_id": session_id,
                            "reason": reason.as_str(),
                        }),
                    );
                }
                Err(e) => {
                    tracing::warn!(account_id = act.id, error = %e, "session rotation failed")
                }
            }
            res
        })
    }
}

impl Actor for AccountActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.deps.board.set(self.id, AccountState::Connecting);
        ctx.run_interval(self.deps.health_check_interval, |act, ctx| {
            act.health_check(ctx)
        });
        ctx.run_interval(self.deps.rotation_check_interval, |act, ctx| {
            act.rotation_check(ctx)
        });
        self.begin_connect(ctx);
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        // Save the session and close the connection before going; the
        // update pump then queues what it holds and ends.
        let Some(client) = self.client.take() else {
            return Running::Stop;
        };
        // Stopped because the runtime is being dropped (no shutdown came
        // first): there is nothing left to wait with; the stored update
        // state is the one committed with the last events.
        if tokio::runtime::Handle::try_current().is_err() {
            return Running::Stop;
        }
        let timeout = self.deps.request_timeout;
        let id = self.id;
        ctx.wait(
            actix::fut::wrap_future(async move {
                if tokio::time::timeout(timeout, client.sync_state())
                    .await
                    .is_err()
                {
                    tracing::warn!(account_id = id, "saving the session timed out at stop");
                }
                client.disconnect().await;
            })
            .map(|(), _, ctx: &mut Context<Self>| ctx.stop()),
        );
        Running::Continue
    }
}

impl Handler<History> for AccountActor {
    type Result = ResponseActFuture<Self, Result<Vec<Message>, CallError>>;

    fn handle(&mut self, msg: History, _: &mut Context<Self>) -> Self::Result {
        let client = match self.connected_client() {
            Ok(c) => c,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        let timeout = self.deps.request_timeout;
        let peers = self.peers.clone();
        let fut = async move {
            let run = async {
                let peer =
                    crate::outbox::drain::resolve(client.as_ref(), &peers, &msg.chat).await?;
                client.history(&peer, msg.limit, msg.before).await
            };
            tokio::time::timeout(timeout, run)
                .await
                .unwrap_or(Err(TgError::Timeout(timeout)))
        };
        Box::pin(
            actix::fut::wrap_future(fut).map(|res, act: &mut Self, ctx| {
                if let Err(e) = &res {
                    act.note_error(e, ctx);
                }
                res.map_err(CallError::Telegram)
            }),
        )
    }
}

impl Handler<SavePart> for AccountActor {
    type Result = ResponseActFuture<Self, Result<(), CallError>>;

    fn handle(&mut self, msg: SavePart, _: &mut Context<Self>) -> Self::Result {
        let client = match self.connected_client() {
            Ok(c) => c,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        let timeout = self.deps.request_timeout;
        let fut = async move {
            let run = client.save_file_part(msg.file_id, msg.part, msg.total_parts, &msg.bytes);
            tokio::time::timeout(timeout, run)
                .await
                .unwrap_or(Err(TgError::Timeout(timeout)))
        };
        Box::pin(
            actix::fut::wrap_future(fut).map(|res, act: &mut Self, ctx| {
                if let Err(e) = &res {
                    act.note_error(e, ctx);
                }
                res.map_err(CallError::Telegram)
            }),
        )
    }
}

impl Handler<Rotate> for AccountActor {
    type Result = ResponseActFuture<Self, Result<i64, CallError>>;

    fn handle(&mut self, Rotate(reason): Rotate, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.rotate(reason))
    }
}

impl Handler<AccountWideTgError> for AccountActor {
    type Result = ();

    fn handle(&mut self, AccountWideTgError(err): AccountWideTgError, ctx: &mut Context<Self>) {
        self.note_error(&err, ctx);
    }
}

impl Handler<GetState> for AccountActor {
    type Result = MessageResult<GetState>;

    fn handle(&mut self, _: GetState, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state)
    }
}

/// [`SessionStore::rotate_active`]; an account without a session is `Unauthorized`.
pub(super) async fn rotate_active(store: &SessionStore, account_id: i64) -> Result<i64, CallError> {
    store
        .rotate_active(account_id)
        .await
        .map_err(|e| CallError::Internal(e.into()))?
        .ok_or(CallError::Telegram(TgError::Unauthorized))
}
