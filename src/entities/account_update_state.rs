//! `account_update_states`: per account, the Telegram update state its
//! announced events lead to, written in the same transaction as they are.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_update_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: i64,
    /// The common message box (private chats and small groups).
    pub pts: i32,
    /// The secondary box (secret chats, some bot updates).
    pub qts: i32,
    pub date: i32,
    pub seq: i32,
    /// Channel pts as `[[channel_id, pts], …]`.
    pub channels: Json,
    pub updated_at: DateTimeWithTimeZone,
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
