//! `users`: the people who log in to tgvisor's API.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub username: String,
    pub email: String,
    /// `username` case-folded by the service; unique.
    pub username_key: String,
    /// `email` case-folded by the service; unique.
    pub email_key: String,
    /// PHC string (argon2id); never leaves the server.
    pub password_hash: String,
    /// `user` or `admin`.
    pub role: String,
    /// Bumped by logout-all; tokens carrying an older version are refused.
    pub token_version: i64,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::account::Entity")]
    Accounts,
}

impl Related<super::account::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Accounts.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
