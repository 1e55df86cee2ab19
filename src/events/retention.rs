//! Retention of the event log: pruning every topic by count and age, and
//! raising its horizon in the same transaction.

use super::dedupe;
use crate::entities::{event, event_horizon};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use std::time::Duration;

/// Prunes every topic to the newest `max_per_topic` events and to those
/// younger than `max_age`; answers how many events went. Each topic's
/// horizon is raised in the same transaction as its rows go, so a reader
/// that misses a row also sees why; the dedupe keys of the pruned events
/// go with them.
pub async fn prune(
    db: &DatabaseConnection,
    max_age: Duration,
    max_per_topic: u64,
) -> Result<u64, DbErr> {
    use sea_orm::sea_query::{Func, OnConflict};
    let topics: Vec<String> = event::Entity::find()
        .select_only()
        .column(event::Column::Topic)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let cutoff =
        chrono::Utc::now() - chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
    let mut deleted = 0;
    for topic in topics {
        let by_count: Option<i64> = event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .filter(event::Column::Topic.eq(&topic))
            .order_by_desc(event::Column::Id)
            .offset(max_per_topic)
            .limit(1)
            .into_tuple()
            .one(db)
            .await?;
        let by_age: Option<Option<i64>> = event::Entity::find()
            .select_only()
            .expr(Func::max(Expr::col(event::Column::Id)))
            .filter(event::Column::Topic.eq(&topic))
            .filter(event::Column::CreatedAt.lt(cutoff.fixed_offset()))
            .into_tuple()
            .one(db)
            .await?;
        let Some(through) = by_count.max(by_age.flatten()) else {
            continue;
        };
        let txn = db.begin().await?;
        event_horizon::Entity::insert(event_horizon::ActiveModel {
            topic: Set(topic.clone()),
            pruned_through: Set(through),
        })
        .on_conflict(
            OnConflict::column(event_horizon::Column::Topic)
                .value(
                    event_horizon::Column::PrunedThrough,
                    // Never lowered, whichever node prunes last.
                    Expr::cust(
                        if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
                            r#"MAX("event_horizons"."pruned_through", "excluded"."pruned_through")"#
                        } else {
                            r#"GREATEST("event_horizons"."pruned_through", "excluded"."pruned_through")"#
                        },
                    ),
                )
                .to_owned(),
        )
        .exec(&txn)
        .await?;
        let res = event::Entity::delete_many()
            .filter(event::Column::Topic.eq(&topic))
            .filter(event::Column::Id.lte(through))
            .exec(&txn)
            .await?;
        dedupe::prune(&txn, &topic, through).await?;
        txn.commit().await?;
        deleted += res.rows_affected;
    }
    Ok(deleted)
}
