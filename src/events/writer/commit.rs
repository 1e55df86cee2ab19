//! How a topic's writer commits: it takes what is queued (up to
//! [`MAX_BATCH`]) and writes it in one transaction, events with their side
//! writes and dedupe keys and the batch's last checkpoint, retrying the
//! whole batch until it is stored; then it publishes the events on the bus.

use super::SideWrite;
use crate::events::dedupe;
use crate::events::metrics::EventMetrics;
use crate::events::{StoredEvent, append};
use crate::supervisor::{Lease, StopRequest};
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

/// How many generations of a topic's writer may panic on the same batch
/// before it is dropped (logged): a batch that always crashes the writer
/// must not stop the topic for good.
const PANICS_PER_BATCH: u32 = 3;

/// What a topic's writer hands to its next generation when it panics: its
/// queue, and the batch it had taken and not yet committed, which the next
/// generation commits first (events are acknowledged when queued, so a
/// batch in hand must not be lost with the task).
pub(super) struct Backlog {
    pub(super) rx: mpsc::Receiver<Append>,
    batch: Vec<Append>,
    /// Generations that started with this batch in hand.
    tries: u32,
}

impl Backlog {
    pub(super) fn new(rx: mpsc::Receiver<Append>) -> Self {
        Self {
            rx,
            batch: Vec::with_capacity(MAX_BATCH),
            tries: 0,
        }
    }
}

/// A topic's writer: commits what is queued, in order, until every sender
/// is gone and the queue is empty, or, once `stop` is requested, until what
/// was queued then is written.
pub(super) async fn run_writer(
    db: DatabaseConnection,
    bus: broadcast::Sender<StoredEvent>,
    metrics: EventMetrics,
    topic: Arc<str>,
    backlog: &mut Lease<Backlog>,
    mut stop: Option<StopRequest>,
) {
    if !backlog.batch.is_empty() {
        backlog.tries += 1;
        if backlog.tries > PANICS_PER_BATCH {
            tracing::error!(
                topic = &*topic,
                events = backlog.batch.len(),
                "dropping a batch the topic's writer crashed on {PANICS_PER_BATCH} times"
            );
            backlog.batch.clear();
            backlog.tries = 0;
        }
    }
    loop {
        if backlog.batch.is_empty() {
            let Backlog { rx, batch, .. } = &mut **backlog;
            let taken = match stop.as_mut() {
                // Stopping only ever interrupts a wait, never a commit.
                Some(requested) => tokio::select! {
                    n = rx.recv_many(batch, MAX_BATCH) => n,
                    () = requested.requested() => {
                        // The service stops: write what is queued, then end.
                        rx.close();
                        stop = None;
                        continue;
                    }
                },
                None => rx.recv_many(batch, MAX_BATCH).await,
            };
            if taken == 0 {
                return;
            }
        }
        let batch = &mut backlog.batch;
        let mut attempt = 0u32;
        let written = loop {
            match write_batch(&db, &topic, batch).await {
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
        backlog.tries = 0;
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
