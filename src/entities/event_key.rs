//! `event_keys`: what the event log has announced, one row per (topic,
//! chat, message, change). The primary key makes a repeat impossible;
//! `event_id` is the announcing event's offset, so rows go with the log's
//! retention.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub topic: String,
    /// The chat (Bot API dialog id); 0 when Telegram does not say (a
    /// deletion in the account's common message box, whose message ids are
    /// unique across its private chats and small groups).
    #[sea_orm(primary_key, auto_increment = false)]
    pub chat_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_id: i64,
    /// `new`, `deleted`, or `edited:<edit date>:<digest>` (one per version).
    #[sea_orm(primary_key, auto_increment = false)]
    pub change: String,
    /// Set in the transaction that claims the key, once the event exists.
    pub event_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
