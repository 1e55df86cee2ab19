//! The outbox's housekeeping task: recounts the backlog gauges from the
//! table and prunes delivered rows past their retention.

use super::backlog::Backlog;
use super::metrics::OutboxMetrics;
use crate::domain::MessageStatus;
use crate::entities::outbox;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use std::time::Duration;

/// How often the depth and oldest-age gauges are recounted from the table.
const DEPTH_INTERVAL: Duration = Duration::from_secs(15);
/// How often delivered rows past their retention are deleted.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Keeps `tgvisor_outbox_depth` true to the table (rows also leave with
/// their account), sets `tgvisor_outbox_oldest_age_seconds` from the same
/// query, and deletes finished rows past retention.
pub(super) async fn housekeeping(
    db: DatabaseConnection,
    metrics: OutboxMetrics,
    retention: Duration,
) {
    let mut depth = tokio::time::interval(DEPTH_INTERVAL);
    let mut prune = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tokio::select! {
            _ = depth.tick() => if let Err(e) = sample_backlog(&db, &metrics).await {
                tracing::warn!(error = %e, "counting the outbox failed");
            },
            _ = prune.tick() => match prune_finished(&db, retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "pruned delivered outbox rows"),
                Err(e) => tracing::warn!(error = %e, "pruning the outbox failed"),
            },
        }
    }
}

/// Reads the backlog and shows it in `metrics`: the housekeeping task's
/// recount, also callable on its own.
pub async fn sample_backlog(
    db: &DatabaseConnection,
    metrics: &OutboxMetrics,
) -> Result<Backlog, DbErr> {
    let backlog = Backlog::read(db).await?;
    metrics.show_backlog(&backlog, chrono::Utc::now());
    Ok(backlog)
}

/// Deletes sent and failed rows older than `retention` (their idempotency
/// keys with them).
pub async fn prune_finished(db: &DatabaseConnection, retention: Duration) -> Result<u64, DbErr> {
    let cutoff =
        chrono::Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let res = outbox::Entity::delete_many()
        .filter(
            outbox::Column::Status
                .is_in([MessageStatus::Sent.as_str(), MessageStatus::Failed.as_str()]),
        )
        .filter(outbox::Column::UpdatedAt.lt(cutoff.fixed_offset()))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
