//! `outbox`: accepted messages on their way to Telegram (see the migration).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    pub user_id: i64,
    pub idempotency_key: Option<String>,
    /// SHA-256 (hex) of the request as accepted, for requests with an
    /// idempotency key (empty otherwise: nothing to compare with).
    pub request_hash: String,
    /// The chat reference as given, canonical (`me`, `@name`, `123`).
    pub chat: String,
    /// The peer it resolved to, once resolved.
    pub chat_id: Option<i64>,
    /// `text`, `photo` or `document`.
    pub kind: String,
    /// The text, or the caption of media.
    pub text: String,
    pub upload_id: Option<i64>,
    pub reply_to: Option<i32>,
    pub silent: bool,
    /// Chosen at acceptance and reused on every attempt.
    pub random_id: i64,
    /// `queued`, `sending`, `sent` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub flood_waits: i32,
    pub telegram_message_id: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTimeWithTimeZone>,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
    pub sent_at: Option<DateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::account::Entity",
        from = "Column::AccountId",
        to = "super::account::Column::Id",
        on_delete = "Cascade"
    )]
    Account,
}

impl Related<super::account::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Account.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
