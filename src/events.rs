//! The durable event log: every event on a topic (`account:<id>`) is a row
//! whose id is its offset. Readers catch up with [`since`].
//!
//! Ordering: offsets come from the database's id sequence, so they increase
//! in insertion order. Each topic has a single writer (the account's actor),
//! which appends one event at a time, so on every topic offsets increase in
//! commit order too and a reader resuming from an offset sees no gap.

use crate::entities::event;
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
