//! The durable event log: every event on a topic (`account:<id>`) is a row
//! whose id is its offset. Readers catch up with [`since`].
//!
//! Ordering: offsets come from the database's id sequence, so they increase
//! in insertion order. Each topic has a single writer, a [`TopicWriter`]
//! task that appends one event at a time, so on every topic offsets increase
//! in commit order too and a reader resuming from an offset sees no gap.
//! Everyone who publishes on a topic (the account's actor, its update pump,
//! later its outbox) goes through that topic's one writer, which
//! [`EventLog::writer`] hands out.
//!
//! Committed events are also published on an in-process bus
//! ([`EventLog::subscribe`]) for live delivery.

use crate::entities::{account, event, event_horizon};
use futures_util::future::BoxFuture;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// The topic of an account's events.
pub fn account_topic(account_id: i64) -> String {
    format!("account:{account_id}")
}

/// An event as stored and delivered.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredEvent {
    pub offset: i64,
    pub topic: String,
    pub kind: String,
    pub data: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::FixedOffset>,
}

impl From<event::Model> for StoredEvent {
    fn from(m: event::Model) -> Self {
        Self {
            offset: m.id,
            topic: m.topic,
            kind: m.kind,
            data: m.payload,
            created_at: m.created_at,
        }
    }
}

/// Appends an event; returns it with its offset.
pub async fn append<C: ConnectionTrait>(
    conn: &C,
    topic: &str,
    kind: &str,
    data: serde_json::Value,
) -> Result<StoredEvent, DbErr> {
    let row = event::ActiveModel {
        topic: Set(topic.to_owned()),
        kind: Set(kind.to_owned()),
        payload: Set(data),
        created_at: Set(chrono::Utc::now().fixed_offset()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(row.into())
}

/// Events on `topic` after `after_offset`, oldest first, at most `limit`.
pub async fn since<C: ConnectionTrait>(
    conn: &C,
    topic: &str,
    after_offset: i64,
    limit: u64,
) -> Result<Vec<StoredEvent>, DbErr> {
    Ok(event::Entity::find()
        .filter(event::Column::Topic.eq(topic))
        .filter(event::Column::Id.gt(after_offset))
        .order_by_asc(event::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// The offset of the newest event on `topic` (0 when it has none).
pub async fn head<C: ConnectionTrait>(conn: &C, topic: &str) -> Result<i64, DbErr> {
    use sea_orm::sea_query::Func;
    let max: Option<Option<i64>> = event::Entity::find()
        .select_only()
        .expr(Func::max(Expr::col(event::Column::Id)))
        .filter(event::Column::Topic.eq(topic))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(max.flatten().unwrap_or(0))
}

/// The newest offset pruned from `topic` (0 when none was): a reader
/// resuming from below it has missed events the log no longer holds.
pub async fn horizon<C: ConnectionTrait>(conn: &C, topic: &str) -> Result<i64, DbErr> {
    Ok(event_horizon::Entity::find_by_id(topic.to_owned())
        .one(conn)
        .await?
        .map_or(0, |h| h.pruned_through))
}

/// Prunes every topic to the newest `max_per_topic` events and to those
/// younger than `max_age`; answers how many events went. Each topic's
/// horizon is raised in the same transaction as its rows go, so a reader
/// that misses a row also sees why.
pub async fn prune(
    db: &DatabaseConnection,
    max_age: Duration,
    max_per_topic: u64,
) -> Result<u64, DbErr> {
    use sea_orm::sea_query::{Func, OnConflict};
    let topics: Vec<String> = event::Entity::find()
        .select_only()
        .column(event::Column::Topic)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let cutoff =
        chrono::Utc::now() - chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
    let mut deleted = 0;
    for topic in topics {
        let by_count: Option<i64> = event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .filter(event::Column::Topic.eq(&topic))
            .order_by_desc(event::Column::Id)
            .offset(max_per_topic)
            .limit(1)
            .into_tuple()
            .one(db)
            .await?;
        let by_age: Option<Option<i64>> = event::Entity::find()
            .select_only()
            .expr(Func::max(Expr::col(event::Column::Id)))
            .filter(event::Column::Topic.eq(&topic))
            .filter(event::Column::CreatedAt.lt(cutoff.fixed_offset()))
            .into_tuple()
            .one(db)
            .await?;
        let Some(through) = by_count.max(by_age.flatten()) else {
            continue;
        };
        let txn = db.begin().await?;
        event_horizon::Entity::insert(event_horizon::ActiveModel {
            topic: Set(topic.clone()),
            pruned_through: Set(through),
        })
        .on_conflict(
            OnConflict::column(event_horizon::Column::Topic)
                .value(
                    event_horizon::Column::PrunedThrough,
                    // Never lowered, whichever node prunes last.
                    Expr::cust(
                        if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
                            r#"MAX("event_horizons"."pruned_through", "excluded"."pruned_through")"#
                        } else {
                            r#"GREATEST("event_horizons"."pruned_through", "excluded"."pruned_through")"#
                        },
                    ),
                )
                .to_owned(),
        )
        .exec(&txn)
        .await?;
        let res = event::Entity::delete_many()
            .filter(event::Column::Topic.eq(&topic))
            .filter(event::Column::Id.lte(through))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        deleted += res.rows_affected;
    }
    Ok(deleted)
}

/// Events waiting for their writer, per topic. A full queue makes
/// publishers wait (backpressure) rather than grow memory.
const WRITER_QUEUE: usize = 1024;
/// Retry delays of a failed append: the writer keeps an event until it is
/// stored (a database outage delays events, it does not drop them).
const RETRY_BASE: Duration = Duration::from_millis(50);
const RETRY_CAP: Duration = Duration::from_secs(5);

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

struct Append {
    kind: String,
    data: serde_json::Value,
    side: Option<SideWrite>,
    done: Option<oneshot::Sender<StoredEvent>>,
}

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
    /// Writer tasks run here, not on whichever thread first asked for one
    /// (an HTTP worker may stop before the service does).
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventLog(..)")
    }
}

impl EventLog {
    /// Must be called inside the runtime the writers should run on.
    pub fn new(db: DatabaseConnection, bus_capacity: usize) -> Self {
        Self {
            inner: Arc::new(EventLogInner {
                db,
                bus: broadcast::channel(bus_capacity.max(1)).0,
                writers: Mutex::default(),
                runtime: tokio::runtime::Handle::current(),
            }),
        }
    }

    /// Committed events, live (a lagging receiver loses the oldest and
    /// catches up from the database with [`since`]).
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
        self.inner.runtime.spawn(run_writer(
            self.inner.db.clone(),
            self.inner.bus.clone(),
            writer.topic.clone(),
            rx,
        ));
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

impl TopicWriter {
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues an event (waits only for queue space); it is written in order.
    pub async fn publish(&self, kind: &str, data: serde_json::Value) -> Result<(), WriterClosed> {
        self.send(kind, data, None, None).await
    }

    /// Queues an `account.state` event and the account row's new state,
    /// written together in one transaction.
    pub async fn publish_state(
        &self,
        account_id: i64,
        state: &str,
        data: serde_json::Value,
    ) -> Result<(), WriterClosed> {
        self.send(
            "account.state",
            data,
            Some(account_state_write(account_id, state)),
            None,
        )
        .await
    }

    /// Queues an event without waiting when the queue has room (keeping the
    /// caller's order); otherwise hands back a future that waits for room.
    pub fn try_publish(
        &self,
        kind: &str,
        data: serde_json::Value,
    ) -> Result<(), BoxFuture<'static, Result<(), WriterClosed>>> {
        self.try_send(kind, data, None)
    }

    /// [`TopicWriter::try_publish`] with a write committed alongside.
    pub fn try_publish_with(
        &self,
        kind: &str,
        data: serde_json::Value,
        side: SideWrite,
    ) -> Result<(), BoxFuture<'static, Result<(), WriterClosed>>> {
        self.try_send(kind, data, Some(side))
    }

    fn try_send(
        &self,
        kind: &str,
        data: serde_json::Value,
        side: Option<SideWrite>,
    ) -> Result<(), BoxFuture<'static, Result<(), WriterClosed>>> {
        let item = Append {
            kind: kind.to_owned(),
            data,
            side,
            done: None,
        };
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
        let (tx, rx) = oneshot::channel();
        self.send(kind, data, Some(side), Some(tx)).await?;
        rx.await.map_err(|_| WriterClosed)
    }

    /// Appends and waits until the event is stored.
    pub async fn append(
        &self,
        kind: &str,
        data: serde_json::Value,
    ) -> Result<StoredEvent, WriterClosed> {
        let (tx, rx) = oneshot::channel();
        self.send(kind, data, None, Some(tx)).await?;
        rx.await.map_err(|_| WriterClosed)
    }

    async fn send(
        &self,
        kind: &str,
        data: serde_json::Value,
        side: Option<SideWrite>,
        done: Option<oneshot::Sender<StoredEvent>>,
    ) -> Result<(), WriterClosed> {
        self.tx
            .send(Append {
                kind: kind.to_owned(),
                data,
                side,
                done,
            })
            .await
            .map_err(|_| WriterClosed)
    }
}

async fn run_writer(
    db: DatabaseConnection,
    bus: broadcast::Sender<StoredEvent>,
    topic: Arc<str>,
    mut rx: mpsc::Receiver<Append>,
) {
    while let Some(item) = rx.recv().await {
        let mut attempt = 0u32;
        let stored = loop {
            match write_one(&db, &topic, &item).await {
                Ok(e) => break e,
                Err(e) => {
                    let delay = RETRY_BASE
                        .saturating_mul(1u32 << attempt.min(10))
                        .min(RETRY_CAP);
                    attempt += 1;
                    tracing::warn!(
                        topic = &*topic,
                        kind = %item.kind,
                        attempt,
                        error = %e,
                        "appending an event failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        };
        let _ = bus.send(stored.clone());
        if let Some(done) = item.done {
            let _ = done.send(stored);
        }
    }
}

async fn write_one(
    db: &DatabaseConnection,
    topic: &str,
    item: &Append,
) -> Result<StoredEvent, DbErr> {
    let Some(side) = &item.side else {
        return append(db, topic, &item.kind, item.data.clone()).await;
    };
    let txn = db.begin().await?;
    side(&txn).await?;
    let event = append(&txn, topic, &item.kind, item.data.clone()).await?;
    txn.commit().await?;
    Ok(event)
}
