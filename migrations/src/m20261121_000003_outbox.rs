//! `outbox`: messages the API accepted and the account's actor delivers.
//!
//! A row is written once, in the request's transaction, before the 202;
//! `random_id` is chosen then and reused on every attempt, so Telegram drops
//! a repeated send (exactly once as far as Telegram's random_id allows).
//! Idempotency keys are unique per user; `request_hash` tells a replay of the
//! same request from a different request under the same key.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    AccountId,
    UserId,
    IdempotencyKey,
    RequestHash,
    Chat,
    ChatId,
    Kind,
    Text,
    UploadId,
    ReplyTo,
    Silent,
    RandomId,
    Status,
    Attempts,
    FloodWaits,
    TelegramMessageId,
    LastError,
    NextAttemptAt,
    CreatedAt,
    UpdatedAt,
    SentAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(big_pk_auto(Outbox::Id))
                    .col(big_integer(Outbox::AccountId))
                    .col(big_integer(Outbox::UserId))
                    .col(string_len_null(Outbox::IdempotencyKey, 255))
                    .col(string_len(Outbox::RequestHash, 64))
                    .col(string_len(Outbox::Chat, 64))
                    .col(big_integer_null(Outbox::ChatId))
                    .col(string_len(Outbox::Kind, 16))
                    .col(text(Outbox::Text))
                    .col(big_integer_null(Outbox::UploadId))
                    .col(integer_null(Outbox::ReplyTo))
                    .col(boolean(Outbox::Silent))
                    .col(big_integer(Outbox::RandomId))
                    .col(string_len(Outbox::Status, 16))
                    .col(integer(Outbox::Attempts).default(0))
                    .col(integer(Outbox::FloodWaits).default(0))
                    .col(integer_null(Outbox::TelegramMessageId))
                    .col(string_len_null(Outbox::LastError, 64))
                    .col(timestamp_with_time_zone_null(Outbox::NextAttemptAt))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone(Outbox::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::SentAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Outbox::Table, Outbox::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // NULL keys are distinct in both SQLite and PostgreSQL: messages
        // without a key never collide.
        manager
            .create_index(
                Index::create()
                    .name("outbox_user_idempotency_key")
                    .table(Outbox::Table)
                    .col(Outbox::UserId)
                    .col(Outbox::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The drain reads an account's undelivered rows in id order; partial,
        // so delivered history does not slow it (same syntax in both databases).
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX outbox_pending ON outbox (account_id, id) WHERE status IN ('queued', 'sending')",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("outbox_account_id")
                    .table(Outbox::Table)
                    .col(Outbox::AccountId)
                    .col(Outbox::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await
    }
}
