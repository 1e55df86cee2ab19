//! `event_keys`: one row per (topic, chat, message, change) the event log
//! has announced; the primary key stops a repeat, which is dropped instead
//! of being announced under a new offset. `event_id` is the offset that
//! announced it, so the rows are pruned with the log.
//!
//! The log's existing `message.new` and `message.deleted` events get their
//! keys here, so the first catch-up after the upgrade (from a session blob's
//! update state, which may lag) does not announce them again. Edits are
//! keyed by a digest computed in Rust and are left out.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventKeys {
    Table,
    Topic,
    ChatId,
    MessageId,
    Change,
    EventId,
}

/// Keys of the events already in the log (the oldest announcement wins).
const BACKFILL_SQLITE: [&str; 2] = [
    "INSERT INTO event_keys (topic, chat_id, message_id, change, event_id) \
     SELECT topic, json_extract(payload, '$.message.chat_id'), \
            json_extract(payload, '$.message.id'), 'new', MIN(id) \
     FROM events \
     WHERE kind = 'message.new' \
       AND json_type(payload, '$.message.chat_id') = 'integer' \
       AND json_type(payload, '$.message.id') = 'integer' \
     GROUP BY 1, 2, 3 \
     ON CONFLICT DO NOTHING",
    "INSERT INTO event_keys (topic, chat_id, message_id, change, event_id) \
     SELECT e.topic, COALESCE(json_extract(e.payload, '$.chat_id'), 0), j.value, \
            'deleted', MIN(e.id) \
     FROM events e, json_each(e.payload, '$.message_ids') j \
     WHERE e.kind = 'message.deleted' AND j.type = 'integer' \
     GROUP BY 1, 2, 3 \
     ON CONFLICT DO NOTHING",
];

const BACKFILL_POSTGRES: [&str; 2] = [
    "INSERT INTO event_keys (topic, chat_id, message_id, change, event_id) \
     SELECT topic, (payload->'message'->>'chat_id')::bigint, \
            (payload->'message'->>'id')::bigint, 'new', MIN(id) \
     FROM events \
     WHERE kind = 'message.new' \
       AND jsonb_typeof(payload->'message'->'chat_id') = 'number' \
       AND jsonb_typeof(payload->'message'->'id') = 'number' \
     GROUP BY 1, 2, 3 \
     ON CONFLICT DO NOTHING",
    "INSERT INTO event_keys (topic, chat_id, message_id, change, event_id) \
     SELECT e.topic, COALESCE((e.payload->>'chat_id')::bigint, 0), j.value::bigint, \
            'deleted', MIN(e.id) \
     FROM events e \
     CROSS JOIN LATERAL jsonb_array_elements_text( \
         CASE WHEN jsonb_typeof(e.payload->'message_ids') = 'array' \
              THEN e.payload->'message_ids' ELSE '[]'::jsonb END) AS j(value) \
     WHERE e.kind = 'message.deleted' \
     GROUP BY 1, 2, 3 \
     ON CONFLICT DO NOTHING",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventKeys::Table)
                    .col(string_len(EventKeys::Topic, 64))
                    .col(big_integer(EventKeys::ChatId))
                    .col(big_integer(EventKeys::MessageId))
                    .col(string_len(EventKeys::Change, 64))
                    .col(big_integer_null(EventKeys::EventId))
                    .primary_key(
                        Index::create()
                            .col(EventKeys::Topic)
                            .col(EventKeys::ChatId)
                            .col(EventKeys::MessageId)
                            .col(EventKeys::Change),
                    )
                    .to_owned(),
            )
            .await?;
        // Pruning deletes a topic's keys up to an offset.
        manager
            .create_index(
                Index::create()
                    .name("event_keys_topic_event")
                    .table(EventKeys::Table)
                    .col(EventKeys::Topic)
                    .col(EventKeys::EventId)
                    .to_owned(),
            )
            .await?;
        let backfill = match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => BACKFILL_POSTGRES,
            _ => BACKFILL_SQLITE,
        };
        for statement in backfill {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventKeys::Table).to_owned())
            .await
    }
}
