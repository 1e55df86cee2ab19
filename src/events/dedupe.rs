//! Dedupe keys: the event log's second line of defence against announcing
//! one Telegram change twice (the first is the update state committed with
//! the events, see `accounts::updates`).
//!
//! An event may carry a [`Dedupe`]: the change it announces (`new`,
//! `deleted`, or one version of an edit) on messages of a chat. The writer
//! claims one `event_keys` row per message in the event's transaction;
//! the table's primary key (topic, chat, message, change) is the guarantee.
//! Messages already claimed are taken out of the event, and an event left
//! with none is dropped: it is never stored, so it takes no offset.
//!
//! Claiming never burns an offset either: the keys are inserted (`ON
//! CONFLICT DO NOTHING`, no sequence involved) before the event, and the
//! event only when something is new. The rows then get the event's offset,
//! and go when the log prunes it.

use crate::entities::event_key;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};
use std::collections::BTreeSet;

/// Rows per insert statement (SQLite binds at most 32 766 values).
const CHUNK: usize = 500;

/// What an event announces, as the log dedupes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dedupe {
    /// The chat (Bot API dialog id), 0 when Telegram does not say.
    pub chat_id: i64,
    /// `new`, `deleted`, `edited:<edit date>:<digest>`; at most 64 bytes.
    pub change: String,
    /// The messages; an event on several of them (a deletion) lists them in
    /// its payload's `message_ids`, which the writer narrows to the new ones.
    pub message_ids: Vec<i64>,
}

impl Dedupe {
    pub fn new(chat_id: i64, change: impl Into<String>, message_ids: Vec<i64>) -> Self {
        Self {
            chat_id,
            change: change.into(),
            message_ids,
        }
    }
}

/// Claims `keys` on `topic` inside the caller's transaction; answers the
/// message ids nobody had claimed, in the order given (none: a repeat).
/// Their rows have no event yet: [`bind`] gives them one.
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    topic: &str,
    keys: &Dedupe,
) -> Result<Vec<i64>, DbErr> {
    let mut ids = keys.message_ids.clone();
    ids.sort_unstable();
    ids.dedup();
    let mut inserted = 0;
    for chunk in ids.chunks(CHUNK) {
        let mut insert = Query::insert();
        insert
            .into_table(event_key::Entity)
            .columns([
                event_key::Column::Topic,
                event_key::Column::ChatId,
                event_key::Column::MessageId,
                event_key::Column::Change,
            ])
            .on_conflict(
                OnConflict::columns([
                    event_key::Column::Topic,
                    event_key::Column::ChatId,
                    event_key::Column::MessageId,
                    event_key::Column::Change,
                ])
                .do_nothing()
                .to_owned(),
            );
        for id in chunk {
            insert.values_panic([
                topic.into(),
                keys.chat_id.into(),
                (*id).into(),
                keys.change.as_str().into(),
            ]);
        }
        inserted += conn.execute(&insert).await?.rows_affected();
    }
    let mut fresh: BTreeSet<i64> = if inserted == 0 {
        BTreeSet::new()
    } else if inserted == ids.len() as u64 {
        ids.into_iter().collect()
    } else {
        // Some were new: those are the rows still without an event.
        let mut fresh = BTreeSet::new();
        for chunk in ids.chunks(CHUNK) {
            let found: Vec<i64> = key_rows(topic, keys, chunk)
                .filter(event_key::Column::EventId.is_null())
                .select_only()
                .column(event_key::Column::MessageId)
                .into_tuple()
                .all(conn)
                .await?;
            fresh.extend(found);
        }
        fresh
    };
    // In the order given, each once.
    Ok(keys
        .message_ids
        .iter()
        .copied()
        .filter(|id| fresh.remove(id))
        .collect())
}

/// Records `offset` as the event that announced `ids` (claimed by [`claim`]
/// in the same transaction).
pub async fn bind<C: ConnectionTrait>(
    conn: &C,
    topic: &str,
    keys: &Dedupe,
    ids: &[i64],
    offset: i64,
) -> Result<(), DbErr> {
    for chunk in ids.chunks(CHUNK) {
        event_key::Entity::update_many()
            .col_expr(event_key::Column::EventId, Expr::value(offset))
            .filter(event_key::Column::Topic.eq(topic))
            .filter(event_key::Column::ChatId.eq(keys.chat_id))
            .filter(event_key::Column::Change.eq(keys.change.as_str()))
            .filter(event_key::Column::MessageId.is_in(chunk.iter().copied()))
            .filter(event_key::Column::EventId.is_null())
            .exec(conn)
            .await?;
    }
    Ok(())
}

fn key_rows(topic: &str, keys: &Dedupe, ids: &[i64]) -> sea_orm::Select<event_key::Entity> {
    event_key::Entity::find()
        .filter(event_key::Column::Topic.eq(topic))
        .filter(event_key::Column::ChatId.eq(keys.chat_id))
        .filter(event_key::Column::Change.eq(keys.change.as_str()))
        .filter(event_key::Column::MessageId.is_in(ids.iter().copied()))
}

/// Deletes `topic`'s keys announced at or before `through` (pruning).
pub async fn prune<C: ConnectionTrait>(conn: &C, topic: &str, through: i64) -> Result<u64, DbErr> {
    let res = event_key::Entity::delete_many()
        .filter(event_key::Column::Topic.eq(topic))
        .filter(event_key::Column::EventId.lte(through))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}

/// Deletes every key of `topic` (its account was removed).
pub async fn forget<C: ConnectionTrait>(conn: &C, topic: &str) -> Result<u64, DbErr> {
    let res = event_key::Entity::delete_many()
        .filter(event_key::Column::Topic.eq(topic))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}
