//! `audit_log`: security-relevant actions with actor, time and outcome.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeWithTimeZone,
    pub actor_user_id: Option<i64>,
    /// `user:<id>`, `anonymous`, `cli` or `system`.
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    pub ip: Option<String>,
    pub detail: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
