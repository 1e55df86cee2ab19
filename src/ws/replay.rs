//! A subscription's log tasks: the `subscribed` answer and the events
//! after the client's offset, read from the durable event log page by
//! page, and the live events held back meanwhile. Each writes into the
//! connection's send queue at the pace the client reads.

use super::WsContext;
use super::event::HubEvent;
use super::frames::{ServerFrame, event_frame};
use super::outlet::{Out, Outlet};
use crate::metrics::ws::FrameKind;
use serde_json::Value;
use std::sync::Arc;

/// Reads a topic's log for one subscription, writing to its queue.
pub(super) struct Replay {
    db: sea_orm::DatabaseConnection,
    /// Bounds the log reads of all connections at once.
    gate: Arc<tokio::sync::Semaphore>,
    out: Arc<Outlet>,
    topic: String,
    page: u64,
    /// Queue slots left free by every write of this task.
    headroom: usize,
}

/// How a log task ended.
pub(super) enum ReplayResult {
    Done {
        topic: String,
        last: i64,
    },
    /// `since` is not in the log's history.
    Resync {
        topic: String,
    },
    Failed {
        topic: String,
        error: sea_orm::DbErr,
    },
    /// The connection's writer is gone.
    Closed,
}

/// The connection's writer is gone.
struct WriterGone;

impl Replay {
    /// A log task for the subscription to `topic` of the connection whose
    /// send queue is `out`.
    pub(super) fn new(cx: &WsContext, out: Arc<Outlet>, topic: String) -> Self {
        let cap = cx.settings.websocket.send_queue.max(1) as usize;
        Self {
            db: cx.db.clone(),
            gate: cx.replays.clone(),
            out,
            topic,
            page: u64::from(cx.settings.websocket.replay_page.max(1)),
            // Room a replay leaves in the queue for pings, replies and live
            // events of other topics (a replay can wait; they cannot).
            headroom: (cap / 4).max(1).min(cap.saturating_sub(1)),
        }
    }

    /// Queues `out` once `headroom` slots would still be free after it: a
    /// replay goes at the pace the client reads, and never takes the room
    /// that pings, replies and live events need.
    async fn put(&self, out: Out) -> Result<(), WriterGone> {
        self.out
            .put(out, self.headroom)
            .await
            .map_err(|_| WriterGone)
    }

    /// A log read, once the gate lets it through: when every subscription
    /// catches up at once (a restarted pump, a lagging shard), the reads
    /// queue here instead of at the database's pool.
    async fn read<T>(
        &self,
        query: impl std::future::Future<Output = Result<T, sea_orm::DbErr>>,
    ) -> Result<T, sea_orm::DbErr> {
        // The gate is never closed; were it, reading unbounded is right.
        let _permit = self.gate.acquire().await.ok();
        query.await
    }

    /// `subscribed`, then the events after `since` (when given).
    pub(super) async fn subscribe(self, id: Value, since: Option<i64>) -> ReplayResult {
        let head = match self.read(crate::events::head(&self.db, &self.topic)).await {
            Ok(h) => h,
            Err(error) => {
                return ReplayResult::Failed {
                    topic: self.topic,
                    error,
                };
            }
        };
        let horizon = match self
            .read(crate::events::horizon(&self.db, &self.topic))
            .await
        {
            Ok(h) => h,
            Err(error) => {
                return ReplayResult::Failed {
                    topic: self.topic,
                    error,
                };
            }
        };
        // Below the horizon, events the client missed are pruned; past the
        // head, the offset was not handed out by this log (a restored
        // backup, another deployment). Either way the client must resync.
        let recovered = since.is_none_or(|s| s >= horizon && s <= head);
        let frame = ServerFrame::Subscribed {
            id: &id,
            topic: &self.topic,
            offset: head,
            recovered,
        };
        if self
            .put(Out::Text(frame.to_text().into(), None, FrameKind::Reply))
            .await
            .is_err()
        {
            return ReplayResult::Closed;
        }
        match since {
            None => ReplayResult::Done {
                topic: self.topic,
                last: head,
            },
            Some(_) if !recovered => ReplayResult::Resync { topic: self.topic },
            Some(s) => self.pages(s).await,
        }
    }

    /// The events after `after`, page by page, until the log runs out.
    pub(super) async fn pages(self, mut after: i64) -> ReplayResult {
        loop {
            let events = match self
                .read(crate::events::since(
                    &self.db,
                    &self.topic,
                    after,
                    self.page,
                ))
                .await
            {
                Ok(e) => e,
                Err(error) => {
                    return ReplayResult::Failed {
                        topic: self.topic,
                        error,
                    };
                }
            };
            // Pruned meanwhile, past where this replay stands: a gap.
            match self
                .read(crate::events::horizon(&self.db, &self.topic))
                .await
            {
                Ok(h) if h > after => return ReplayResult::Resync { topic: self.topic },
                Ok(_) => {}
                Err(error) => {
                    return ReplayResult::Failed {
                        topic: self.topic,
                        error,
                    };
                }
            }
            let full = events.len() as u64 == self.page;
            for e in events {
                after = e.offset;
                let frame = event_frame(&e);
                if self
                    .put(Out::Text(frame.into(), None, FrameKind::Event))
                    .await
                    .is_err()
                {
                    return ReplayResult::Closed;
                }
            }
            if !full {
                return ReplayResult::Done {
                    topic: self.topic,
                    last: after,
                };
            }
        }
    }

    /// Live events held during a replay, in order.
    pub(super) async fn release(self, events: Vec<Arc<HubEvent>>) -> ReplayResult {
        let mut last = 0;
        for e in events {
            last = e.offset;
            let out = Out::Text(e.frame.clone(), Some(e.created_at), FrameKind::Event);
            if self.put(out).await.is_err() {
                return ReplayResult::Closed;
            }
        }
        ReplayResult::Done {
            topic: self.topic,
            last,
        }
    }
}
