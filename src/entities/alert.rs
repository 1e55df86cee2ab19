//! `alerts`: the alert router's state (see the migration).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// What makes two raises the same alert.
    pub fingerprint: String,
    pub name: String,
    /// `high`, `medium` or `low`.
    pub severity: String,
    pub summary: String,
    /// A JSON object of string labels.
    pub labels: String,
    /// `firing`, `acknowledged` or `resolved`.
    pub status: String,
    /// The escalation tier notified last (0: the severity's channels).
    pub tier: i32,
    /// Notifications sent in the current tier.
    pub notifications: i32,
    /// The channels it reached, a JSON array (its resolution goes to all).
    pub notified: String,
    pub started_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
    pub last_notified_at: Option<DateTimeWithTimeZone>,
    /// When the next repeat (or escalation) is due; none when no more are.
    pub next_notify_at: Option<DateTimeWithTimeZone>,
    pub acked_at: Option<DateTimeWithTimeZone>,
    pub acked_by: Option<i64>,
    pub resolved_at: Option<DateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
