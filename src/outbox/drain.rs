//! An account's outbox drain: runs inside the AccountActor while it is
//! connected, and sends the account's undelivered messages.
//!
//! - Order: per chat, strictly in acceptance order (a chat's next message
//!   waits for the one before it, whatever that one is waiting for); chats
//!   do not wait for each other.
//! - Pace: each send takes a slot from the account's and the chat's limits
//!   (`rate_limits.telegram.messages_sent`). The drain asks the limiter when
//!   the next head may go ([`RateLimiter::ready_at`]) and sleeps until then,
//!   or until a message arrives for a chat that could go sooner; it never
//!   spins, and never rereads its queue for messages that must wait anyway.
//! - FLOOD_WAIT blocks the key it applies to (the account, or one chat) for
//!   the time Telegram asked plus a margin; the message stays queued. A
//!   per-chat wait stops only that chat. An account-wide wait longer than
//!   `rate_limits.flood_wait.short_threshold_ms` is also reported to the
//!   actor, which shows the account as `flood_limited` until it passes.
//! - Transient failures (network, timeout, Telegram 5xx) are retried with
//!   backoff up to `outbox.max_attempts`; permanent ones (PEER_ID_INVALID,
//!   bad requests) fail the message at once; session-fatal ones leave it
//!   queued and stop the drain (the account needs its owner).
//! - Every transition is written together with its `message.status` event,
//!   in one transaction, through the account topic's writer.
//!
//! Crash safety: a row is `sending` while its send is in flight; after a
//! crash it is simply tried again, with the same `random_id`, which Telegram
//! (and the sim) answer as a duplicate instead of sending twice.

mod outcome;
mod peers;
mod store;

pub use peers::{PeerCache, peer_cache, resolve};
pub use store::{DbStore, DrainStore, RowUpdate};

use super::arrivals::Arrivals;
use super::metrics::OutboxMetrics;
use crate::config::OutboxSettings;
use crate::domain::Fault;
use crate::domain::MessageStatus;
use crate::domain::validation::ChatRef;
use crate::entities::outbox;
use crate::events::WriterClosed;
use crate::ratelimit::{Key, RateLimiter};
use crate::telegram::{Client, MediaKind, SendOptions, TgError};
use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use sea_orm::DbErr;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// At most this many chats are considered per step (the oldest heads).
const MAX_HEADS: u64 = 1024;
/// Pause after a database error before looking again.
const DB_RETRY: Duration = Duration::from_secs(1);

/// What the drain tells its actor.
pub trait DrainObserver: Send + Sync {
    /// A Telegram error the account as a whole must act on: a session-fatal
    /// one, or a long account-wide flood wait.
    fn account_error(&self, err: TgError);
}

/// Everything one account's drain needs.
pub struct Drain {
    pub account_id: i64,
    pub client: Arc<dyn Client>,
    pub store: Arc<dyn DrainStore>,
    /// Told when messages for this account are accepted, and for which chats.
    pub arrivals: Arc<Arrivals>,
    pub limiter: RateLimiter,
    pub peers: PeerCache,
    pub metrics: OutboxMetrics,
    pub settings: OutboxSettings,
    pub request_timeout: Duration,
    pub observer: Arc<dyn DrainObserver>,
}

/// After a step: go on, or stop (the account cannot send any more).
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// The drain's running state.
struct Run {
    rng: SmallRng,
    /// Rows waiting out a retry delay or a wait of their own, set during
    /// this run (rows from before a restart go by their `next_attempt_at`).
    not_before: HashMap<i64, Instant>,
}

impl Drain {
    /// Runs until the account can no longer send (or the actor drops it).
    pub async fn run(self) {
        let mut run = Run {
            rng: SmallRng::from_rng(&mut rand::rng()),
            not_before: HashMap::new(),
        };
        loop {
            match self.step(&mut run).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => return,
                Err(e) => {
                    tracing::warn!(account_id = self.account_id, error = %e, "outbox drain: database error; retrying");
                    tokio::time::sleep(DB_RETRY).await;
                }
            }
        }
    }

    /// The chat of a row, when known without asking Telegram.
    fn chat_id(&self, row: &outbox::Model) -> Option<i64> {
        self.peers.get(&row.chat).map(|p| p.id).or(row.chat_id)
    }

    fn keys(&self, chat_id: Option<i64>) -> Vec<Key> {
        let mut keys = vec![Key::account_messages(self.account_id)];
        if let Some(chat) = chat_id {
            keys.push(Key::chat_messages(self.account_id, chat));
        }
        keys
    }

    /// When a row may be tried, as far as its own waits go.
    fn row_ready(&self, run: &Run, row: &outbox::Model, now: Instant) -> Instant {
        if let Some(at) = run.not_before.get(&row.id) {
            return *at;
        }
        match row.next_attempt_at {
            Some(next) => {
                let wait = (next.with_timezone(&Utc) - Utc::now())
                    .to_std()
                    .unwrap_or_default();
                now + wait
            }
            None => now,
        }
    }

    async fn step(&self, run: &mut Run) -> Result<Flow, DbErr> {
        // What arrives from here on is news to the heads about to be read.
        self.arrivals.reset();
        let rows = self.store.heads(self.account_id, MAX_HEADS).await?;
        if rows.is_empty() {
            run.not_before.clear();
            self.arrivals.next().await;
            return Ok(Flow::Continue);
        }
        // The head of each chat, and when each may go.
        let now = Instant::now();
        let mut best: Option<(Instant, &outbox::Model)> = None;
        for row in &rows {
            let at = self
                .limiter
                .ready_at(&self.keys(self.chat_id(row)))
                .max(self.row_ready(run, row, now));
            if best.is_none_or(|(b, _)| at < b) {
                best = Some((at, row));
            }
        }
        let Some((at, head)) = best else {
            return Ok(Flow::Continue);
        };
        // `ready_at` answers "now" as its own, later clock reading.
        if at > Instant::now() {
            // A new message can go sooner than this head only in a chat
            // without a head (one with a head has older messages in front
            // of it), and never before the account's own limit or block
            // allows. So: sleep until the head may go, waking early only
            // when a message for a new chat arrives while the account could
            // send sooner. Reading the heads again on every arrival would
            // scan the whole queue per accepted batch.
            let account_at = self
                .limiter
                .ready_at(&[Key::account_messages(self.account_id)]);
            if account_at >= at {
                tokio::time::sleep_until(at).await;
            } else {
                let until = tokio::time::sleep_until(at);
                tokio::pin!(until);
                loop {
                    tokio::select! {
                        () = &mut until => break,
                        arrived = self.arrivals.next() => {
                            if arrived.beyond(|chat| rows.iter().any(|r| r.chat == chat)) {
                                break;
                            }
                        }
                    }
                }
            }
            return Ok(Flow::Continue);
        }
        let head = head.clone();
        run.not_before.remove(&head.id);
        self.attempt(head, run).await
    }

    /// One try of a chat's head message.
    async fn attempt(&self, row: outbox::Model, run: &mut Run) -> Result<Flow, DbErr> {
        let Ok(chat) = ChatRef::parse(&row.chat) else {
            // Validated at acceptance: a row that does not parse was not written by us.
            return Ok(self
                .fail(&row, row.attempts, "invalid_chat", Fault::Client, None)
                .await);
        };
        let timeout = self.request_timeout;
        let resolved =
            tokio::time::timeout(timeout, resolve(self.client.as_ref(), &self.peers, &chat))
                .await
                .unwrap_or(Err(TgError::Timeout(timeout)));
        let peer = match resolved {
            Ok(p) => p,
            Err(e) => {
                return Ok(self
                    .failed(&row, None, e, "contacts.resolveUsername", run)
                    .await);
            }
        };
        if self.limiter.check_all(&self.keys(Some(peer.id))).is_err() {
            // The chat's own limit, now that the chat is known: look again.
            if row.chat_id != Some(peer.id) {
                self.store.set_chat_id(row.id, peer.id).await?;
            }
            return Ok(Flow::Continue);
        }
        // `attempts` counts tries that got an answer: one cut short by a
        // crash or a stop is not held against the message.
        let attempts = row.attempts + 1;
        let sending = RowUpdate {
            chat_id: Some(peer.id),
            ..Default::default()
        };
        let event = self.event(
            &row,
            MessageStatus::Sending,
            serde_json::json!({ "attempt": attempts, "chat_id": peer.id }),
        );
        match self
            .store
            .transition(row.id, MessageStatus::Sending, sending, event)
            .await
        {
            Ok(true) => {}
            // The account was removed meanwhile: nothing to send.
            Ok(false) => return Ok(Flow::Continue),
            Err(WriterClosed) => return Ok(Flow::Stop),
        }
        let opts = SendOptions {
            reply_to: row.reply_to,
            silent: row.silent,
            random_id: row.random_id,
        };
        let media = MediaKind::parse(&row.kind);
        let (sent, method) = match (media, row.upload_id) {
            (None, _) => (
                tokio::time::timeout(timeout, self.client.send_text(&peer, &row.text, &opts))
                    .await
                    .unwrap_or(Err(TgError::Timeout(timeout))),
                "messages.sendMessage",
            ),
            (Some(kind), Some(upload_id)) => {
                let Some(file) = self.store.uploaded_file(upload_id).await? else {
                    // Checked at acceptance; gone since (its account removed).
                    return Ok(self
                        .fail(&row, attempts, "upload_missing", Fault::Client, None)
                        .await);
                };
                let send = self.client.send_media(&peer, &file, kind, &row.text, &opts);
                (
                    tokio::time::timeout(timeout, send)
                        .await
                        .unwrap_or(Err(TgError::Timeout(timeout))),
                    "messages.sendMedia",
                )
            }
            (Some(_), None) => {
                return Ok(self
                    .fail(&row, attempts, "upload_missing", Fault::Client, None)
                    .await);
            }
        };
        let telegram_id = match sent {
            Ok(m) => Some(m.id),
            // Telegram has it, but its id is not in the answer: an earlier
            // attempt went through (its answer was lost), or the answer had
            // another shape.
            Err(e) if e.is_random_id_duplicate() || e.is_sent_without_message() => None,
            Err(e) => {
                return Ok(self.failed(&row, Some(&peer), e, method, run).await);
            }
        };
        let update = RowUpdate {
            attempts: Some(attempts),
            telegram_message_id: Some(telegram_id),
            last_error: Some(None),
            next_attempt_at: Some(None),
            sent_at: Some(Utc::now()),
            ..Default::default()
        };
        let mut detail = serde_json::json!({ "attempts": attempts, "chat_id": peer.id });
        if let Some(id) = telegram_id
            && let Some(obj) = detail.as_object_mut()
        {
            obj.insert("telegram_message_id".into(), id.into());
        }
        let event = self.event(&row, MessageStatus::Sent, detail);
        let flow = self.write(row.id, MessageStatus::Sent, update, event).await;
        if flow == Flow::Continue {
            self.metrics.finished.with_label_values(&["sent"]).inc();
            self.metrics.depth.dec();
            let accepted = row.created_at.with_timezone(&Utc);
            self.metrics.delivery.observe(
                (Utc::now() - accepted)
                    .to_std()
                    .unwrap_or_default()
                    .as_secs_f64(),
            );
        }
        Ok(flow)
    }
}

#[cfg(test)]
mod tests;
