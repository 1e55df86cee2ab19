//! Reads over the undelivered rows: the backlog (how many, the oldest) and
//! the head of each chat, which the drain sends next.

use crate::domain::MessageStatus;
use crate::entities::outbox;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect};

/// The messages not delivered yet (queued or sending): how many, and when
/// the oldest of them was accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    pub depth: u64,
    /// `None` when nothing is waiting.
    pub oldest: Option<chrono::DateTime<chrono::Utc>>,
}

impl Backlog {
    /// Counts the undelivered rows and finds the oldest, in one query.
    pub async fn read(db: &DatabaseConnection) -> Result<Self, DbErr> {
        use sea_orm::sea_query::{Expr, ExprTrait};
        let row: Option<(i64, Option<chrono::DateTime<chrono::FixedOffset>>)> =
            outbox::Entity::find()
                .select_only()
                .column_as(Expr::col(outbox::Column::Id).count(), "depth")
                .column_as(Expr::col(outbox::Column::CreatedAt).min(), "oldest")
                .filter(outbox::Column::Status.is_in([
                    MessageStatus::Queued.as_str(),
                    MessageStatus::Sending.as_str(),
                ]))
                .into_tuple()
                .one(db)
                .await?;
        let (depth, oldest) = row.unwrap_or((0, None));
        Ok(Self {
            depth: u64::try_from(depth).unwrap_or(0),
            oldest: oldest.map(|t| t.with_timezone(&chrono::Utc)),
        })
    }
}

/// The head of each of an account's chats: its oldest undelivered row,
/// oldest heads first. One row per chat, however long the queues behind.
pub async fn heads(
    db: &DatabaseConnection,
    account_id: i64,
    limit: u64,
) -> Result<Vec<outbox::Model>, DbErr> {
    use sea_orm::QueryOrder;
    use sea_orm::sea_query::{Expr, Func, Query};
    let first_of_each_chat = Query::select()
        .expr(Func::min(Expr::col(outbox::Column::Id)))
        .from(outbox::Entity)
        .and_where(outbox::Column::AccountId.eq(account_id))
        .and_where(outbox::Column::Status.is_in([
            MessageStatus::Queued.as_str(),
            MessageStatus::Sending.as_str(),
        ]))
        .group_by_col(outbox::Column::Chat)
        .to_owned();
    outbox::Entity::find()
        .filter(outbox::Column::Id.in_subquery(first_of_each_chat))
        .order_by_asc(outbox::Column::Id)
        .limit(limit)
        .all(db)
        .await
}
