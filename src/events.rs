//! The durable event log: every event on a topic (`account:<id>`) is a row
//! whose id is its offset. Readers catch up with [`since`].
//!
//! Ordering: offsets come from the database's id sequence, so they increase
//! in insertion order. Each topic has a single writer ([`TopicWriter`],
//! which [`EventLog::writer`] hands out) committing in order, so on every
//! topic offsets increase in commit order too and a reader resuming from an
//! offset sees no gap.
//!
//! Events that announce a Telegram change carry [`Dedupe`] keys: one change
//! is announced once, whatever repeats it (see [`dedupe`]).
//!
//! Committed events are also published on an in-process bus
//! ([`EventLog::subscribe`]) for live delivery.

pub mod dedupe;
mod metrics;
mod retention;
mod writer;

pub use dedupe::Dedupe;
pub use metrics::{DEDUPED_KINDS, EventMetrics};
pub use retention::prune;
pub use writer::{
    EventLog, MAX_BATCH, Pending, SideWrite, TopicWriter, WriterClosed, account_state_write,
};

use crate::entities::{event, event_horizon};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::Serialize;

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
