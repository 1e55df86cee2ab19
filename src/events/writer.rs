//! The one writer of each topic, and the live bus.
//!
//! Everyone who publishes on a topic (the account's actor, its update pump,
//! its outbox, uploads) goes through that topic's [`TopicWriter`], a task
//! that appends in the order it was handed events. It takes what is queued
//! (up to [`MAX_BATCH`]) and commits it in one transaction: events, the
//! writes that go with them ([`SideWrite`]), their dedupe keys and the last
//! checkpoint of the batch. A failed transaction is retried whole, so
//! either all of a batch is stored or none of it. Committed events are then
//! published on the in-process bus ([`EventLog::subscribe`]).

mod commit;
mod spawn;

pub use commit::MAX_BATCH;

use self::commit::Append;
use super::StoredEvent;
use super::dedupe::Dedupe;
use super::metrics::EventMetrics;
use crate::entities::account;
use crate::supervisor::{
    ChildRef, ChildSpec, Intensity, SupervisionRuntime, Supervisor, SupervisorSpec,
};
use futures_util::future::BoxFuture;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Events waiting for their writer, per topic. A full queue makes
/// publishers wait (backpressure) rather than grow memory.
const WRITER_QUEUE: usize = 1024;

/// The topic's writer is gone (the service is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the event writer for this topic has stopped")]
pub struct WriterClosed;

/// A write committed in the same transaction as an event (the change the
/// event announces: an account's state, an outbox row's status). It may run
/// more than once (the writer retries a failed transaction), so it must be
/// idempotent, and it must not fail for a row that is gone.
pub type SideWrite =
    Arc<dyn for<'a> Fn(&'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>> + Send + Sync>;

/// Sets `accounts.state`.
pub fn account_state_write(account_id: i64, state: &str) -> SideWrite {
    let state = state.to_owned();
    Arc::new(move |txn| {
        let state = state.clone();
        Box::pin(async move {
            account::Entity::update_many()
                .col_expr(account::Column::State, Expr::value(state))
                .col_expr(
                    account::Column::UpdatedAt,
                    Expr::value(chrono::Utc::now().fixed_offset()),
                )
                .filter(account::Column::Id.eq(account_id))
                .exec(txn)
                .await?;
            Ok(())
        })
    })
}

/// The durable log plus the live bus; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<EventLogInner>,
}

struct EventLogInner {
    db: DatabaseConnection,
    bus: broadcast::Sender<StoredEvent>,
    writers: Mutex<HashMap<String, TopicWriter>>,
    metrics: EventMetrics,
    /// Writer tasks run here, not on whichever thread first asked for one
    /// (an HTTP worker may stop before the service does).
    runtime: tokio::runtime::Handle,
    /// The `event-writers` supervisor, once the tree has it
    /// ([`EventLog::writers_supervisor`]).
    supervisor: OnceLock<ChildRef<Supervisor>>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventLog(..)")
    }
}

impl EventLog {
    /// Must be called inside the runtime the writers should run on.
    pub fn new(db: DatabaseConnection, bus_capacity: usize, metrics: EventMetrics) -> Self {
        Self {
            inner: Arc::new(EventLogInner {
                db,
                bus: broadcast::channel(bus_capacity.max(1)).0,
                writers: Mutex::default(),
                metrics,
                runtime: tokio::runtime::Handle::current(),
                supervisor: OnceLock::new(),
            }),
        }
    }

    /// The `event-writers` supervisor, to start under the root before
    /// anything publishes: each topic's writer becomes its child. Without
    /// it (tools, unit tests) writers run as plain tasks.
    pub fn writers_supervisor(&self, runtime: Arc<SupervisionRuntime>) -> ChildSpec {
        let (spec, _) = SupervisorSpec::new("event-writers")
            .intensity(Intensity::PerChild)
            .dynamic();
        let (child, supervisor) = spec.into_child(runtime);
        let _ = self.inner.supervisor.set(supervisor);
        child
    }

    /// Committed events, live (a lagging receiver loses the oldest and
    /// catches up from the database with [`super::since`]).
    pub fn subscribe(&self) -> broadcast::Receiver<StoredEvent> {
        self.inner.bus.subscribe()
    }

    /// The one writer of `topic`.
    pub fn writer(&self, topic: &str) -> TopicWriter {
        let mut writers = self
            .inner
            .writers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = writers.get(topic)
            && !w.tx.is_closed()
        {
            return w.clone();
        }
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let writer = TopicWriter {
            topic: Arc::from(topic),
            tx,
        };
        spawn::start(&self.inner, writer.topic.clone(), rx);
        writers.insert(topic.to_owned(), writer.clone());
        writer
    }

    /// Forgets a topic's writer (its account was removed). Events already
    /// queued are still written.
    pub fn forget(&self, topic: &str) {
        self.inner
            .writers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(topic);
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }
}

/// Appends to one topic, in order. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TopicWriter {
    topic: Arc<str>,
    tx: mpsc::Sender<Append>,
}

/// A publish that found the queue full: await it to wait for room.
pub type Pending = BoxFuture<'static, Result<(), WriterClosed>>;

impl TopicWriter {
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues an event (waits only for queue space); it is written in order.
    pub async fn publish(&self, kind: &str, data: serde_json::Value) -> Result<(), WriterClosed> {
        self.send(Append::event(kind, data)).await
    }

    /// Queues an event announcing a Telegram change: stored only for the
    /// messages of `keys` the topic has not announced before (none: the
    /// event is dropped and counted). `checkpoint` commits with it (see
    /// [`TopicWriter::checkpoint`]), even when the event is dropped.
    pub async fn publish_deduped(
        &self,
        kind: &str,
        data: serde_json::Value,
        keys: Dedupe,
        checkpoint: Option<SideWrite>,
    ) -> Result<(), WriterClosed> {
        self.send(Append {
            keys: Some(keys),
            checkpoint,
            ..Append::event(kind, data)
        })
        .await
    }

    /// Queues a checkpoint: a write that records how far the topic's
    /// producer got (an account's update state). It commits in order with
    /// the events queued before it; a later checkpoint supersedes it, so a
    /// batch runs only its last one.
    pub async fn checkpoint(&self, write: SideWrite) -> Result<(), WriterClosed> {
        self.send(Append {
            checkpoint: Some(write),
            ..Append::default()
        })
        .await
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) -> Result<(), WriterClosed> {
        let (tx, rx) = oneshot::channel();
        self.send(Append {
            done: Some(tx),
            ..Append::default()
        })
        .await?;
        rx.await.map(drop).map_err(|_| WriterClosed)
    }

    /// Queues an `account.state` event and the account row's new state,
    /// written together in one transaction.
    pub async fn publish_state(
        &self,
        account_id: i64,
        state: &str,
        data: serde_json::Value,
    ) -> Result<(), WriterClosed> {
        self.send(Append {
            side: Some(account_state_write(account_id, state)),
            ..Append::event("account.state", data)
        })
        .await
    }

    /// Queues an event without waiting when the queue has room (keeping the
    /// caller's order); otherwise hands back a future that waits for room.
    pub fn try_publish(&self, kind: &str, data: serde_json::Value) -> Result<(), Pending> {
        self.try_send(Append::event(kind, data))
    }

    /// [`TopicWriter::try_publish`] with a write committed alongside.
    pub fn try_publish_with(
        &self,
        kind: &str,
        data: serde_json::Value,
        side: SideWrite,
    ) -> Result<(), Pending> {
        self.try_send(Append {
            side: Some(side),
            ..Append::event(kind, data)
        })
    }

    fn try_send(&self, item: Append) -> Result<(), Pending> {
        match self.tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(item)) => {
                let tx = self.tx.clone();
                Err(Box::pin(async move {
                    tx.send(item).await.map_err(|_| WriterClosed)
                }))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Box::pin(async { Err(WriterClosed) })),
        }
    }

    /// [`TopicWriter::publish_state`], waiting until the state and its event
    /// are stored.
    pub async fn commit_state(
        &self,
        account_id: i64,
        state: &str,
        data: serde_json::Value,
    ) -> Result<StoredEvent, WriterClosed> {
        self.commit_with(
            "account.state",
            data,
            account_state_write(account_id, state),
        )
        .await
    }

    /// Appends an event and `side` in one transaction, waiting until both
    /// are stored.
    pub async fn commit_with(
        &self,
        kind: &str,
        data: serde_json::Value,
        side: SideWrite,
    ) -> Result<StoredEvent, WriterClosed> {
        self.stored(Append {
            side: Some(side),
            ..Append::event(kind, data)
        })
        .await
    }

    /// Appends and waits until the event is stored.
    pub async fn append(
        &self,
        kind: &str,
        data: serde_json::Value,
    ) -> Result<StoredEvent, WriterClosed> {
        self.stored(Append::event(kind, data)).await
    }

    /// Queues an item without keys (so always stored) and waits for it.
    async fn stored(&self, mut item: Append) -> Result<StoredEvent, WriterClosed> {
        let (tx, rx) = oneshot::channel();
        item.done = Some(tx);
        self.send(item).await?;
        rx.await.ok().flatten().ok_or(WriterClosed)
    }

    async fn send(&self, item: Append) -> Result<(), WriterClosed> {
        self.tx.send(item).await.map_err(|_| WriterClosed)
    }
}
