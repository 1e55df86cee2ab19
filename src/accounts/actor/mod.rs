//! `AccountActor`: one per active account, owning exactly one Telegram
//! client. It runs the account's state machine (see [`super::state`]),
//! persists the session as the client changes it ([`sink`]), turns updates
//! into durable events (see [`super::updates`]), pings Telegram on the
//! health-check interval ([`health`]) and rotates the session when it is
//! due ([`rotation`]).
//!
//! This file holds the actor, its lifecycle and how it publishes its state;
//! connecting is in [`connect`], what runs while connected in [`connected`],
//! the messages it answers in [`messages`] and [`handlers`].
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

mod connect;
mod connected;
mod handlers;
mod health;
pub mod messages;
mod rotation;
pub mod sink;

pub use messages::{CallError, GetState, History, Rotate, SavePart};
pub use sink::StoreSink;
pub(in crate::accounts) use sink::rotate_active;

use super::state::StateBoard;
use crate::domain::AccountState;
use crate::events::TopicWriter;
use crate::sessions::SessionStore;
use crate::supervisor::ExitSignal;
use crate::telegram::metrics::TelegramMetrics;
use crate::telegram::{Backend, Client};
use actix::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

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

    fn connected_client(&self) -> Result<Arc<dyn Client>, CallError> {
        match (&self.client, self.state) {
            (Some(c), AccountState::Connected | AccountState::FloodLimited) => Ok(c.clone()),
            _ => Err(CallError::NotConnected(self.state)),
        }
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
