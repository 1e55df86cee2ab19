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

use super::{Arrivals, OutboxMetrics};
use crate::config::OutboxSettings;
use crate::domain::Fault;
use crate::domain::MessageStatus;
use crate::domain::validation::ChatRef;
use crate::entities::outbox;
use crate::events::{SideWrite, TopicWriter, WriterClosed};
use crate::ratelimit::{Key, RateLimiter};
use crate::supervisor::Backoff;
use crate::telegram::{Client, FloodScope, MediaKind, Peer, SendOptions, TgError, UploadedFile};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Resolved chats of one account, by canonical reference; entries live
/// `cache.default_ttl_ms` (the seed's CacheManager: 5 min) and are dropped
/// when Telegram says the peer is invalid.
pub type PeerCache = moka::sync::Cache<String, Peer>;

pub fn peer_cache(ttl: Duration) -> PeerCache {
    moka::sync::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(ttl)
        .build()
}

/// Resolves through the cache.
pub async fn resolve(
    client: &dyn Client,
    cache: &PeerCache,
    chat: &ChatRef,
) -> Result<Peer, TgError> {
    let key = chat.to_string();
    if let Some(peer) = cache.get(&key) {
        return Ok(peer);
    }
    match client.resolve(chat).await {
        Ok(peer) => {
            cache.insert(key, peer.clone());
            Ok(peer)
        }
        Err(e) => {
            if matches!(e, TgError::PeerInvalid) {
                cache.invalidate(&key);
            }
            Err(e)
        }
    }
}

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

/// The fields a transition changes besides the status (`None`: unchanged).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowUpdate {
    pub attempts: Option<i32>,
    pub flood_waits: Option<i32>,
    pub chat_id: Option<i64>,
    pub telegram_message_id: Option<Option<i32>>,
    pub last_error: Option<Option<String>>,
    pub next_attempt_at: Option<Option<DateTime<Utc>>>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl RowUpdate {
    fn active_model(&self, status: MessageStatus) -> outbox::ActiveModel {
        let mut m = outbox::ActiveModel {
            status: Set(status.as_str().to_owned()),
            updated_at: Set(Utc::now().fixed_offset()),
            ..Default::default()
        };
        if let Some(v) = self.attempts {
            m.attempts = Set(v);
        }
        if let Some(v) = self.flood_waits {
            m.flood_waits = Set(v);
        }
        if let Some(v) = self.chat_id {
            m.chat_id = Set(Some(v));
        }
        if let Some(v) = self.telegram_message_id {
            m.telegram_message_id = Set(v);
        }
        if let Some(v) = &self.last_error {
            m.last_error = Set(v.clone());
        }
        if let Some(v) = self.next_attempt_at {
            m.next_attempt_at = Set(v.map(|t| t.fixed_offset()));
        }
        if let Some(v) = self.sent_at {
            m.sent_at = Set(Some(v.fixed_offset()));
        }
        m
    }

    /// Applies the update to a row held in memory (the tests' store).
    #[cfg(test)]
    pub fn apply(&self, status: MessageStatus, row: &mut outbox::Model) {
        row.status = status.as_str().to_owned();
        if let Some(v) = self.attempts {
            row.attempts = v;
        }
        if let Some(v) = self.flood_waits {
            row.flood_waits = v;
        }
        if let Some(v) = self.chat_id {
            row.chat_id = Some(v);
        }
        if let Some(v) = self.telegram_message_id {
            row.telegram_message_id = v;
        }
        if let Some(v) = &self.last_error {
            row.last_error = v.clone();
        }
        if let Some(v) = self.next_attempt_at {
            row.next_attempt_at = v.map(|t| t.fixed_offset());
        }
        if let Some(v) = self.sent_at {
            row.sent_at = Some(v.fixed_offset());
        }
    }
}

/// Where the drain reads and records the account's messages.
#[async_trait]
pub trait DrainStore: Send + Sync {
    /// The head of each chat: its oldest undelivered row (queued or
    /// sending), oldest heads first, at most `limit`.
    async fn heads(&self, account_id: i64, limit: u64) -> Result<Vec<outbox::Model>, DbErr>;
    async fn set_chat_id(&self, id: i64, chat_id: i64) -> Result<(), DbErr>;
    /// A media message's file: its upload, if it is finished.
    async fn uploaded_file(&self, upload_id: i64) -> Result<Option<UploadedFile>, DbErr>;
    /// Writes a row's transition and its `message.status` event together
    /// and waits until both are stored. `Ok(false)`: the row is gone (its
    /// account was removed).
    async fn transition(
        &self,
        id: i64,
        status: MessageStatus,
        update: RowUpdate,
        event: serde_json::Value,
    ) -> Result<bool, WriterClosed>;
}

/// The database, with transitions through the account topic's writer (so
/// the row and its event commit in one transaction, in topic order).
pub struct DbStore {
    pub db: DatabaseConnection,
    pub writer: TopicWriter,
}

#[async_trait]
impl DrainStore for DbStore {
    async fn heads(&self, account_id: i64, limit: u64) -> Result<Vec<outbox::Model>, DbErr> {
        super::heads(&self.db, account_id, limit).await
    }

    async fn set_chat_id(&self, id: i64, chat_id: i64) -> Result<(), DbErr> {
        outbox::Entity::update_many()
            .set(outbox::ActiveModel {
                chat_id: Set(Some(chat_id)),
                ..Default::default()
            })
            .filter(outbox::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn uploaded_file(&self, upload_id: i64) -> Result<Option<UploadedFile>, DbErr> {
        use crate::entities::upload;
        let Some(u) = upload::Entity::find_by_id(upload_id).one(&self.db).await? else {
            return Ok(None);
        };
        if u.status != crate::domain::UploadStatus::Done.as_str() {
            return Ok(None);
        }
        Ok(Some(UploadedFile {
            file_id: u.file_id,
            parts: u32::try_from(u.parts_total.unwrap_or(u.parts_done)).unwrap_or(0),
            name: u.name,
            size: u64::try_from(u.size.unwrap_or(u.bytes)).unwrap_or(0),
            big: u.big,
        }))
    }

    async fn transition(
        &self,
        id: i64,
        status: MessageStatus,
        update: RowUpdate,
        event: serde_json::Value,
    ) -> Result<bool, WriterClosed> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let found = Arc::new(AtomicBool::new(false));
        let seen = found.clone();
        let side: SideWrite = Arc::new(move |txn| {
            let model = update.active_model(status);
            let seen = seen.clone();
            Box::pin(async move {
                // A row that is gone (its account was removed) updates nothing.
                let res = outbox::Entity::update_many()
                    .set(model)
                    .filter(outbox::Column::Id.eq(id))
                    .exec(txn)
                    .await?;
                seen.store(res.rows_affected > 0, Ordering::Relaxed);
                Ok(())
            })
        });
        self.writer
            .commit_with("message.status", event, side)
            .await?;
        Ok(found.load(Ordering::Relaxed))
    }
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

    /// Decides what a failed try means for the message.
    /// `peer` is None when resolving the chat failed: a flood wait is then
    /// about resolving, a method of its own, and only this row waits.
    async fn failed(
        &self,
        row: &outbox::Model,
        peer: Option<&Peer>,
        err: TgError,
        method: &str,
        run: &mut Run,
    ) -> Flow {
        let code = err.code();
        let attempts = row.attempts + 1;
        if let TgError::FloodWait { seconds, scope } = &err {
            let wait = Duration::from_secs(u64::from(*seconds));
            match (scope, peer) {
                (_, None) => {}
                (FloodScope::Account, Some(_)) => {
                    self.limiter
                        .block(&Key::account_messages(self.account_id), wait, method);
                    if wait > self.limiter.short_wait_threshold() {
                        self.observer.account_error(err.clone());
                    }
                }
                (FloodScope::Chat { .. }, Some(peer)) => {
                    self.limiter
                        .block(&Key::chat_messages(self.account_id, peer.id), wait, method);
                }
            }
            // The row itself waits too (the stored `next_attempt_at` is for
            // readers and for the next run after a restart).
            run.not_before
                .insert(row.id, Instant::now() + wait + self.limiter.margin());
            self.metrics
                .retries
                .with_label_values(&["flood_wait"])
                .inc();
            tracing::info!(
                account_id = self.account_id,
                message_id = row.id,
                seconds,
                method,
                "flood wait: the message stays queued"
            );
            let until = Utc::now() + chrono::Duration::seconds(i64::from(*seconds));
            let update = RowUpdate {
                attempts: Some(attempts),
                flood_waits: Some(row.flood_waits + 1),
                last_error: Some(Some("flood_wait".into())),
                next_attempt_at: Some(Some(until)),
                ..Default::default()
            };
            let event = self.event(
                row,
                MessageStatus::Queued,
                serde_json::json!({
                    "attempts": attempts,
                    "error": code,
                    "flood_wait": { "seconds": seconds, "until": until, "scope": scope },
                }),
            );
            return self
                .write(row.id, MessageStatus::Queued, update, event)
                .await;
        }
        if err.is_session_fatal() {
            // Not the message's fault: it waits for the account to come back.
            // No attempt is counted against the message.
            let update = RowUpdate {
                last_error: Some(Some(code.to_owned())),
                ..Default::default()
            };
            let event = self.event(
                row,
                MessageStatus::Queued,
                serde_json::json!({ "attempts": row.attempts, "error": code }),
            );
            let _ = self
                .write(row.id, MessageStatus::Queued, update, event)
                .await;
            self.observer.account_error(err);
            return Flow::Stop;
        }
        if matches!(err, TgError::PeerInvalid) {
            self.peers.invalidate(&row.chat);
        }
        let failures = attempts - row.flood_waits;
        let retry = err.is_transient()
            && u32::try_from(failures).unwrap_or(u32::MAX) < self.settings.max_attempts;
        if !retry {
            let telegram_error = match &err {
                TgError::Other { name, .. } | TgError::BadRequest(name) => Some(name.clone()),
                _ => None,
            };
            return self
                .fail(row, attempts, code, err.fault(), telegram_error)
                .await;
        }
        let backoff = Backoff {
            base: Duration::from_millis(self.settings.retry_base_ms),
            factor: 2.0,
            cap: Duration::from_millis(self.settings.retry_cap_ms.max(self.settings.retry_base_ms)),
            jitter: 0.2,
        };
        let delay = backoff.delay(u32::try_from(failures - 1).unwrap_or(0), &mut run.rng);
        run.not_before.insert(row.id, Instant::now() + delay);
        self.metrics.retries.with_label_values(&[code]).inc();
        tracing::info!(
            account_id = self.account_id,
            message_id = row.id,
            error = code,
            attempts,
            retry_in_ms = delay.as_millis() as u64,
            "sending failed; will retry"
        );
        let update = RowUpdate {
            attempts: Some(attempts),
            last_error: Some(Some(code.to_owned())),
            next_attempt_at: Some(Some(
                Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
            )),
            ..Default::default()
        };
        let event = self.event(
            row,
            MessageStatus::Queued,
            serde_json::json!({
                "attempts": attempts,
                "error": code,
                "retry_in_ms": delay.as_millis() as u64,
            }),
        );
        self.write(row.id, MessageStatus::Queued, update, event)
            .await
    }

    /// Gives the message up; `fault` says whose doing the failure was.
    async fn fail(
        &self,
        row: &outbox::Model,
        attempts: i32,
        code: &str,
        fault: Fault,
        telegram_error: Option<String>,
    ) -> Flow {
        tracing::warn!(
            account_id = self.account_id,
            message_id = row.id,
            error = code,
            attempts,
            "message failed"
        );
        let update = RowUpdate {
            attempts: Some(attempts),
            last_error: Some(Some(code.to_owned())),
            next_attempt_at: Some(None),
            ..Default::default()
        };
        let mut detail = serde_json::json!({ "attempts": attempts, "error": code });
        if let (Some(obj), Some(name)) = (detail.as_object_mut(), telegram_error) {
            obj.insert("telegram_error".into(), name.into());
        }
        let event = self.event(row, MessageStatus::Failed, detail);
        let flow = self
            .write(row.id, MessageStatus::Failed, update, event)
            .await;
        if flow == Flow::Continue {
            self.metrics.failed(code, fault);
            self.metrics.depth.dec();
        }
        flow
    }

    async fn write(
        &self,
        id: i64,
        status: MessageStatus,
        update: RowUpdate,
        event: serde_json::Value,
    ) -> Flow {
        match self.store.transition(id, status, update, event).await {
            Ok(_) => Flow::Continue,
            // Shutting down: the row keeps its previous status and is tried
            // again after the restart (same random_id).
            Err(WriterClosed) => Flow::Stop,
        }
    }

    /// A `message.status` event's data.
    fn event(
        &self,
        row: &outbox::Model,
        status: MessageStatus,
        detail: serde_json::Value,
    ) -> serde_json::Value {
        let mut data = serde_json::json!({
            "account_id": self.account_id,
            "message_id": row.id,
            "chat": row.chat,
            "status": status,
        });
        if let (Some(obj), serde_json::Value::Object(extra)) = (data.as_object_mut(), detail) {
            obj.extend(extra);
        }
        data
    }
}

#[cfg(test)]
mod tests;
