//! `uploads`: upload jobs (see the migration).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "uploads")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    pub user_id: i64,
    /// The file name Telegram shows.
    pub name: String,
    /// `receiving`, `uploading`, `done` or `failed`.
    pub status: String,
    /// The declared size (`Content-Length`), or the final size once known.
    pub size: Option<i64>,
    /// Bytes received and cut into parts so far.
    pub bytes: i64,
    /// Known once the size is.
    pub parts_total: Option<i32>,
    /// Parts Telegram has acknowledged.
    pub parts_done: i32,
    /// Uploaded with `saveBigFilePart` (over 10 MiB).
    pub big: bool,
    /// Telegram's id of the file, chosen by tgvisor.
    pub file_id: i64,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
    pub finished_at: Option<DateTimeWithTimeZone>,
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
