//! The durable outbox: `POST /accounts/{id}/messages` accepts a message once
//! and keeps it until Telegram has it.
//!
//! - Acceptance ([`Outbox::enqueue`]): the request is validated, then a
//!   single writer task inserts it, together with whatever other requests
//!   arrived meanwhile, in one transaction (group commit; see [`writer`]).
//!   The 202 is answered only after that commit, so an acknowledged message
//!   survives any crash that follows.
//! - `random_id` is chosen at acceptance and stored with the row; every
//!   attempt reuses it, so Telegram drops a repeated send: a retry after a
//!   lost answer, or after a crash between Telegram's answer and our commit,
//!   cannot duplicate the message.
//! - Idempotency keys are unique per user. The same key with the same
//!   request answers the original message; with a different request, 409.
//! - Delivery is the account actor's job ([`drain`]): in order per chat,
//!   through the rate limiter, every transition a `message.status` event.
//!
//! Here: the [`Outbox`] handle, and the writer and housekeeping tasks as
//! supervised children ([`Outbox::task_children`]). Around it: `message` (a send request, validated), `writer` (the
//! group commit), `error` and `view` (what acceptance and reads answer),
//! `arrivals` (how a drain learns of new messages), [`drain`] (delivery),
//! `backlog` and `housekeeping` (the undelivered rows read, counted and
//! pruned), `metrics`.

mod arrivals;
mod backlog;
pub mod drain;
mod error;
mod housekeeping;
mod message;
mod metrics;
mod view;
mod writer;

pub use arrivals::{Arrivals, Arrived};
pub use backlog::{Backlog, heads};
pub use error::EnqueueError;
pub use housekeeping::{prune_finished, sample_backlog};
pub use message::{
    IdempotencyKey, MAX_CAPTION_UTF16, MAX_TEXT_UTF16, Media, NewMessage, validate_caption,
    validate_text,
};
pub use metrics::OutboxMetrics;
pub use view::{Accepted, MessageView};

use self::arrivals::Signals;
use self::housekeeping::housekeeping;
use crate::config::OutboxSettings;
use crate::entities::outbox;
use crate::supervisor::{ChildSpec, Handover};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the writer; a full queue makes callers wait.
const WRITER_QUEUE: usize = 8192;

/// The outbox handle; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    tx: mpsc::Sender<writer::Request>,
    /// The writer's end of the queue, handed from one writer to the next.
    queue: Handover<mpsc::Receiver<writer::Request>>,
    signals: Signals,
    metrics: OutboxMetrics,
    settings: OutboxSettings,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox(..)")
    }
}

impl Outbox {
    /// The handle. Nothing is written until its two task children
    /// ([`Outbox::task_children`]) run under a supervisor: until then
    /// accepted requests wait in the writer's queue.
    pub fn new(db: DatabaseConnection, settings: &OutboxSettings, metrics: OutboxMetrics) -> Self {
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        Self {
            inner: Arc::new(Inner {
                db,
                tx,
                queue: Handover::new(rx),
                signals: Signals::default(),
                metrics,
                settings: settings.clone(),
            }),
        }
    }

    /// The outbox's two task children, to run under a supervisor:
    /// - `outbox-writer`, the group commit. Its queue outlives it: requests
    ///   waiting there when it panics are written by the next generation;
    ///   the batch it was committing goes unanswered, which its callers see
    ///   as `unavailable` (503, retry): nothing is acknowledged and lost;
    /// - `outbox-housekeeping`, the backlog gauges and the pruning.
    pub fn task_children(&self) -> [ChildSpec; 2] {
        let inner = self.inner.clone();
        let (writer, _) = ChildSpec::task("outbox-writer", move |_| {
            let inner = inner.clone();
            async move {
                let queue = inner.queue.lease().ok_or("the writer's queue is held")?;
                writer::run(
                    inner.db.clone(),
                    queue,
                    inner.settings.max_batch.max(1) as usize,
                    inner.metrics.clone(),
                    inner.signals.clone(),
                )
                .await;
                Ok(())
            }
        });
        let inner = self.inner.clone();
        let (housekeeping, _) = ChildSpec::task("outbox-housekeeping", move |_| {
            let retention = inner.settings.retention_ms;
            let (db, metrics) = (inner.db.clone(), inner.metrics.clone());
            async move {
                housekeeping(db, metrics, retention).await;
                Ok(())
            }
        });
        [writer, housekeeping]
    }

    /// Accepts a message: answers once it is committed.
    pub async fn enqueue(&self, msg: NewMessage) -> Result<Accepted, EnqueueError> {
        let (reply, rx) = oneshot::channel();
        // Only a keyed request can be compared with an earlier one.
        let hash = match msg.idempotency_key {
            Some(_) => msg.request_hash(),
            None => String::new(),
        };
        self.inner
            .tx
            .send(writer::Request { msg, hash, reply })
            .await
            .map_err(|_| EnqueueError::Closed)?;
        rx.await.map_err(|_| EnqueueError::Closed)?
    }

    /// A message of the user's account.
    pub async fn get(
        &self,
        user_id: i64,
        account_id: i64,
        message_id: i64,
    ) -> Result<Option<MessageView>, DbErr> {
        Ok(outbox::Entity::find_by_id(message_id)
            .filter(outbox::Column::AccountId.eq(account_id))
            .filter(outbox::Column::UserId.eq(user_id))
            .one(&self.inner.db)
            .await?
            .map(Into::into))
    }

    /// What the account's drain learns of accepted messages from.
    pub fn arrivals(&self, account_id: i64) -> Arc<Arrivals> {
        self.inner.signals.get(account_id)
    }

    /// The account was removed (its rows went with it).
    pub fn forget(&self, account_id: i64) {
        self.inner.signals.forget(account_id);
    }

    pub fn metrics(&self) -> &OutboxMetrics {
        &self.inner.metrics
    }

    pub fn settings(&self) -> &OutboxSettings {
        &self.inner.settings
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }
}
