//! How a topic's writer commits: it takes what is queued (up to
//! [`MAX_BATCH`]) and writes it in one transaction, events with their side
//! writes and dedupe keys and the batch's last checkpoint, retrying the
//! whole batch until it is stored; then it publishes the events on the bus.

use super::SideWrite;
use crate::events::dedupe;
use crate::events::metrics::EventMetrics;
use crate::events::{StoredEvent, append};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Most items committed in one transaction.
pub const MAX_BATCH: usize = 128;
/// Retry delays of a failed batch: the writer keeps its events until they
/// are stored (a database outage delays events, it does not drop them).
const RETRY_BASE: Duration = Duration::from_millis(50);
const RETRY_CAP: Duration = Duration::from_secs(5);

/// One item of a writer's queue.
#[derive(Default)]
pub(super) struct Append {
    /// Kind and payload; none for a checkpoint or a flush alone.
    pub(super) event: Option<(String, serde_json::Value)>,
    pub(super) keys: Option<dedupe::Dedupe>,
    pub(super) side: Option<SideWrite>,
    /// Superseded by a later checkpoint: of a batch's, only the last runs.
    pub(super) checkpoint: Option<SideWrite>,
    /// Told once the item is committed: its event, if it stored one.
    pub(super) done: Option<oneshot::Sender<Option<StoredEvent>>>,
}

impl Append {
    pub(super) fn event(kind: &str, data: serde_json::Value) -> Self {
        Self {
            event: Some((kind.to_owned(), data)),
            ..Self::default()
        }
    }

    /// A plain event: needs no transaction of its own.
    fn is_plain(&self) -> bool {
        self.keys.is_none() && self.side.is_none() && self.checkpoint.is_none()
    }
}

pub(super) async fn run_writer(
    db: DatabaseConnection,
    bus: broadcast::Sender<StoredEvent>,
    metrics: EventMetrics,
    topic: Arc<str>,
    mut rx: mpsc::Receiver<Append>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut attempt = 0u32;
        let written = loop {
            match write_batch(&db, &topic, &batch).await {
                Ok(written) => break written,
                Err(e) => {
                    let delay = RETRY_BASE
                        .saturating_mul(1u32 << attempt.min(10))
                        .min(RETRY_CAP);
                    attempt += 1;
                    tracing::warn!(
                        topic = &*topic,
                        events = batch.len(),
                        attempt,
                        error = %e,
                        "appending events failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        };
        for (item, stored) in batch.drain(..).zip(written) {
            match (&stored, &item.event) {
                (Some(event), _) => {
                    let _ = bus.send(event.clone());
                }
                (None, Some((kind, _))) => {
                    metrics.duplicates.with_label_values(&[kind]).inc();
                    tracing::debug!(topic = &*topic, kind, "dropped an event announced before");
                }
                (None, None) => {}
            }
            if let Some(done) = item.done {
                let _ = done.send(stored);
            }
        }
    }
}

/// Writes a batch in one transaction; answers, per item, the event stored.
async fn write_batch(
    db: &DatabaseConnection,
    topic: &str,
    items: &[Append],
) -> Result<Vec<Option<StoredEvent>>, DbErr> {
    if let [item] = items
        && item.is_plain()
    {
        // One plain event: no transaction needed.
        let Some((kind, data)) = &item.event else {
            return Ok(vec![None]);
        };
        return Ok(vec![Some(append(db, topic, kind, data.clone()).await?)]);
    }
    let txn = db.begin().await?;
    let mut written = Vec::with_capacity(items.len());
    for item in items {
        if let Some(side) = &item.side {
            side(&txn).await?;
        }
        let Some((kind, data)) = &item.event else {
            written.push(None);
            continue;
        };
        let Some(keys) = &item.keys else {
            written.push(Some(append(&txn, topic, kind, data.clone()).await?));
            continue;
        };
        let fresh = dedupe::claim(&txn, topic, keys).await?;
        if fresh.is_empty() {
            written.push(None);
            continue;
        }
        let mut data = data.clone();
        if fresh.len() < keys.message_ids.len()
            && let Some(ids) = data.get_mut("message_ids")
        {
            *ids = serde_json::json!(fresh);
        }
        let event = append(&txn, topic, kind, data).await?;
        dedupe::bind(&txn, topic, keys, &fresh, event.offset).await?;
        written.push(Some(event));
    }
    if let Some(checkpoint) = items.iter().rev().find_map(|i| i.checkpoint.as_ref()) {
        checkpoint(&txn).await?;
    }
    txn.commit().await?;
    Ok(written)
}
