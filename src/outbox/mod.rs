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

pub mod drain;
mod metrics;
mod writer;

pub use metrics::OutboxMetrics;

use crate::config::OutboxSettings;
use crate::domain::AccountState;
use crate::domain::MessageStatus;
use crate::domain::validation::{ChatRef, ValidationError};
use crate::entities::outbox;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// Telegram's limit on a message's text, in UTF-16 code units (how
/// Telegram counts): counting the same way means nothing we accept is
/// refused later as MESSAGE_TOO_LONG.
pub const MAX_TEXT_UTF16: usize = 4096;

/// Requests waiting for the writer; a full queue makes callers wait.
const WRITER_QUEUE: usize = 8192;

/// A client's `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        const F: &str = "idempotency_key";
        if input.is_empty() {
            return Err(ValidationError::new(F, "empty", "must not be empty"));
        }
        if input.len() > 255 {
            return Err(ValidationError::new(
                F,
                "too_long",
                "must be at most 255 characters",
            ));
        }
        if !input.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ValidationError::new(
                F,
                "invalid_characters",
                "must be visible ASCII characters (no spaces)",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyKey(..)")
    }
}

/// Checks a message text: not blank, within Telegram's length.
pub fn validate_text(text: &str) -> Result<(), ValidationError> {
    const F: &str = "text";
    if text.trim().is_empty() {
        return Err(ValidationError::new(F, "empty", "is required"));
    }
    // NUL cannot be stored (PostgreSQL text) nor sent; other control
    // characters but tab and line breaks have no place in a message.
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(ValidationError::new(
            F,
            "invalid_characters",
            "must not contain control characters (tab and line breaks are fine)",
        ));
    }
    if text.encode_utf16().count() > MAX_TEXT_UTF16 {
        return Err(ValidationError::new(
            F,
            "too_long",
            "must be at most 4096 characters (UTF-16 code units, as Telegram counts)",
        ));
    }
    Ok(())
}

/// A validated message to accept.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub account_id: i64,
    pub user_id: i64,
    pub idempotency_key: Option<IdempotencyKey>,
    pub chat: ChatRef,
    /// The text, or the caption of media.
    pub text: String,
    pub reply_to: Option<i32>,
    pub silent: bool,
    /// A finished upload to send, when the message is media.
    pub media: Option<Media>,
}

/// A finished upload, sent as a photo or a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Media {
    pub upload_id: i64,
    pub kind: crate::telegram::MediaKind,
}

impl Media {
    /// The outbox row's `kind`.
    pub fn kind_str(self) -> &'static str {
        self.kind.as_str()
    }
}

/// Telegram's limit on a media caption.
pub const MAX_CAPTION_UTF16: usize = 1024;

/// Checks a media caption: may be empty, at most 1024 characters (UTF-16
/// code units), no control characters but tab and line breaks.
pub fn validate_caption(caption: &str) -> Result<(), ValidationError> {
    const F: &str = "caption";
    if caption
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(ValidationError::new(
            F,
            "invalid_characters",
            "must not contain control characters (tab and line breaks are fine)",
        ));
    }
    if caption.encode_utf16().count() > MAX_CAPTION_UTF16 {
        return Err(ValidationError::new(
            F,
            "too_long",
            "must be at most 1024 characters (UTF-16 code units, as Telegram counts)",
        ));
    }
    Ok(())
}

impl NewMessage {
    /// A send request, checked: the chat reference parses, the text is
    /// within Telegram's limits, `reply_to` is a message id, the key is
    /// well formed. `POST /messages` and WebSocket `send` frames both come
    /// through here.
    #[allow(clippy::too_many_arguments)]
    pub fn validated(
        account_id: i64,
        user_id: i64,
        chat: &str,
        text: String,
        reply_to: Option<i32>,
        silent: bool,
        idempotency_key: Option<&str>,
    ) -> Result<Self, ValidationError> {
        let chat = ChatRef::parse(chat)?;
        validate_text(&text)?;
        if reply_to.is_some_and(|r| r <= 0) {
            return Err(ValidationError::new(
                "reply_to",
                "invalid",
                "must be a positive message id",
            ));
        }
        let idempotency_key = idempotency_key.map(IdempotencyKey::parse).transpose()?;
        Ok(Self {
            account_id,
            user_id,
            idempotency_key,
            chat,
            text,
            reply_to,
            silent,
            media: None,
        })
    }

    /// Like [`NewMessage::validated`], for media: a finished upload sent
    /// with an optional caption (whether the upload exists, is the
    /// caller's and is finished is for the caller to check).
    #[allow(clippy::too_many_arguments)]
    pub fn validated_media(
        account_id: i64,
        user_id: i64,
        chat: &str,
        media: Media,
        caption: String,
        reply_to: Option<i32>,
        silent: bool,
        idempotency_key: Option<&str>,
    ) -> Result<Self, ValidationError> {
        validate_caption(&caption)?;
        // The text checks, with a stand-in text: the rest is the same.
        let mut msg = Self::validated(
            account_id,
            user_id,
            chat,
            "-".to_owned(),
            reply_to,
            silent,
            idempotency_key,
        )?;
        msg.text = caption;
        msg.media = Some(media);
        Ok(msg)
    }

    /// What makes two requests "the same" under one idempotency key.
    fn request_hash(&self) -> String {
        let mut canonical = serde_json::json!({
            "account": self.account_id,
            "chat": self.chat.to_string(),
            "kind": "text",
            "text": self.text,
            "reply_to": self.reply_to,
            "silent": self.silent,
        });
        // Text requests hash as they always did (keys stored before media
        // existed must still match their retries); media adds its own.
        if let Some(m) = self.media {
            canonical["kind"] = m.kind_str().into();
            canonical["upload_id"] = m.upload_id.into();
        }
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The answer to an accepted (or replayed) message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub message_id: i64,
    pub status: MessageStatus,
    /// An earlier request with the same idempotency key was answered.
    pub replayed: bool,
}

/// Why a message was not accepted. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("no such account")]
    NotFound,
    #[error("the account cannot send messages in its state ({0})")]
    Unavailable(AccountState),
    #[error("this Idempotency-Key was already used for a different request")]
    KeyReused,
    #[error("the outbox is not running")]
    Closed,
    /// The request's idempotency key was taken, and its row removed, while
    /// the request was decided: nothing was written; a retry decides again.
    #[error("a concurrent change touched this request; try again")]
    Raced,
    #[error("internal error")]
    Internal(#[source] DbErr),
}

impl EnqueueError {
    /// The stable error code (HTTP bodies and WebSocket error frames).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Unavailable(_) => "account_unavailable",
            Self::KeyReused => "idempotency_key_reused",
            Self::Closed => "unavailable",
            Self::Raced => "retry",
            Self::Internal(_) => "internal",
        }
    }

    /// When a retry may succeed, for refusals that are about timing.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        matches!(self, Self::Closed | Self::Raced).then_some(std::time::Duration::from_secs(1))
    }

    /// The same refusal, for a repeat of the refused request.
    fn again(&self) -> Self {
        match self {
            Self::NotFound => Self::NotFound,
            Self::Unavailable(s) => Self::Unavailable(*s),
            Self::KeyReused => Self::KeyReused,
            Self::Closed => Self::Closed,
            Self::Raced => Self::Raced,
            Self::Internal(e) => Self::Internal(DbErr::Custom(e.to_string())),
        }
    }
}

/// A message as `GET /accounts/{id}/messages/{message_id}` shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub message_id: i64,
    pub account_id: i64,
    /// The chat as given (`me`, `@username`, numeric id).
    pub chat: String,
    /// The peer it resolved to, once resolved.
    pub chat_id: Option<i64>,
    pub kind: String,
    pub status: MessageStatus,
    /// Tries so far (flood waits included).
    pub attempts: i32,
    /// FLOOD_WAITs met on the way.
    pub flood_waits: i32,
    /// Telegram's id of the message, once sent (absent when Telegram
    /// reported the send as a duplicate of an earlier attempt).
    pub telegram_message_id: Option<i32>,
    /// The last error's stable code.
    pub last_error: Option<String>,
    /// When the next try is due after a transient failure.
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<outbox::Model> for MessageView {
    fn from(m: outbox::Model) -> Self {
        let utc = |t: chrono::DateTime<chrono::FixedOffset>| t.with_timezone(&chrono::Utc);
        Self {
            message_id: m.id,
            account_id: m.account_id,
            chat: m.chat,
            chat_id: m.chat_id,
            kind: m.kind,
            status: MessageStatus::parse(&m.status).unwrap_or(MessageStatus::Queued),
            attempts: m.attempts,
            flood_waits: m.flood_waits,
            telegram_message_id: m.telegram_message_id,
            last_error: m.last_error,
            next_attempt_at: m.next_attempt_at.map(utc),
            created_at: utc(m.created_at),
            updated_at: utc(m.updated_at),
            sent_at: m.sent_at.map(utc),
        }
    }
}

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

/// What committed for one account since its drain last looked: the chats
/// that got new messages, and a wake-up.
///
/// The drain only needs to read its heads again when a message arrives for
/// a chat it has no head for (a chat with a head has older messages in
/// front of the new one); telling it which chats got messages spares it a
/// scan of the whole queue per accepted batch.
#[derive(Debug, Default)]
pub struct Arrivals {
    chats: Mutex<ArrivedChats>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct ArrivedChats {
    chats: HashSet<String>,
    /// More distinct chats than [`Arrivals::CAPACITY`]: not worth listing.
    many: bool,
}

/// What [`Arrivals::next`] saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrived {
    /// New messages for these chats (canonical references).
    Chats(HashSet<String>),
    /// New messages for too many chats to list.
    Many,
}

impl Arrived {
    /// Whether a chat not in `known` got a message.
    pub fn beyond(&self, mut known: impl FnMut(&str) -> bool) -> bool {
        match self {
            Self::Many => true,
            Self::Chats(chats) => chats.iter().any(|c| !known(c)),
        }
    }
}

impl Arrivals {
    /// Distinct chats remembered between two looks (beyond: [`Arrived::Many`]).
    pub const CAPACITY: usize = 1024;

    /// New messages committed for these chats.
    pub fn note<'a>(&self, chats: impl IntoIterator<Item = &'a str>) {
        {
            let mut arrived = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
            for chat in chats {
                if arrived.many {
                    break;
                }
                if !arrived.chats.contains(chat) {
                    if arrived.chats.len() >= Self::CAPACITY {
                        arrived.chats.clear();
                        arrived.many = true;
                    } else {
                        arrived.chats.insert(chat.to_owned());
                    }
                }
            }
        }
        self.wake.notify_one();
    }

    /// Forgets what arrived so far: the caller is about to read the heads.
    pub fn reset(&self) {
        self.take();
    }

    fn take(&self) -> Option<Arrived> {
        let mut arrived = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
        if std::mem::take(&mut arrived.many) {
            return Some(Arrived::Many);
        }
        (!arrived.chats.is_empty()).then(|| Arrived::Chats(std::mem::take(&mut arrived.chats)))
    }

    /// Waits for the next arrivals (since the last `reset` or `next`).
    pub async fn next(&self) -> Arrived {
        loop {
            let woken = self.wake.notified();
            if let Some(arrived) = self.take() {
                return arrived;
            }
            woken.await;
        }
    }
}

/// Each account's [`Arrivals`].
#[derive(Clone, Default)]
struct Signals(Arc<Mutex<HashMap<i64, Arc<Arrivals>>>>);

impl Signals {
    fn get(&self, account_id: i64) -> Arc<Arrivals> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(account_id)
            .or_default()
            .clone()
    }

    fn forget(&self, account_id: i64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&account_id);
    }
}

/// The outbox handle; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    tx: mpsc::Sender<writer::Request>,
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
    /// Starts the writer and the housekeeping task on the current runtime.
    pub fn new(db: DatabaseConnection, settings: &OutboxSettings, metrics: OutboxMetrics) -> Self {
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let signals = Signals::default();
        tokio::spawn(writer::run(
            db.clone(),
            rx,
            settings.max_batch.max(1) as usize,
            metrics.clone(),
            signals.clone(),
        ));
        tokio::spawn(housekeeping(
            db.clone(),
            metrics.clone(),
            Duration::from_millis(settings.retention_ms),
        ));
        Self {
            inner: Arc::new(Inner {
                db,
                tx,
                signals,
                metrics,
                settings: settings.clone(),
            }),
        }
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

/// How often the depth and oldest-age gauges are recounted from the table.
const DEPTH_INTERVAL: Duration = Duration::from_secs(15);
/// How often delivered rows past their retention are deleted.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Keeps `tgvisor_outbox_depth` true to the table (rows also leave with
/// their account), sets `tgvisor_outbox_oldest_age_seconds` from the same
/// query, and deletes finished rows past retention.
async fn housekeeping(db: DatabaseConnection, metrics: OutboxMetrics, retention: Duration) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn arrivals_list_new_chats_until_too_many() {
        let arrivals = Arrivals::default();
        arrivals.note(["me", "@a", "me"]);
        assert_eq!(
            arrivals.next().await,
            Arrived::Chats(["me".to_owned(), "@a".to_owned()].into())
        );
        // Taken: the next look waits for news (a spent wake-up finds none).
        assert!(arrivals.take().is_none());
        let names: Vec<String> = (0..=Arrivals::CAPACITY).map(|i| format!("@c{i}")).collect();
        arrivals.note(names.iter().map(String::as_str));
        let many = arrivals.next().await;
        assert_eq!(many, Arrived::Many);
        assert!(
            many.beyond(|_| true),
            "too many to list: any chat may be new"
        );
        arrivals.note(["@b"]);
        arrivals.reset();
        assert!(arrivals.take().is_none(), "reset forgets");
        let one = Arrived::Chats(["@b".to_owned()].into());
        assert!(!one.beyond(|c| c == "@b"));
        assert!(one.beyond(|c| c == "me"));
    }

    #[test]
    fn the_backlog_gauges_show_depth_and_the_oldest_age() {
        let metrics = OutboxMetrics::new(&prometheus::Registry::new()).unwrap();
        let now = chrono::Utc::now();
        metrics.show_backlog(
            &Backlog {
                depth: 3,
                oldest: Some(now - chrono::Duration::milliseconds(90_500)),
            },
            now,
        );
        assert_eq!(metrics.depth.get(), 3);
        assert!((metrics.oldest_age.get() - 90.5).abs() < 1e-9);
        // Nothing waiting: both back to zero.
        metrics.show_backlog(&Backlog::default(), now);
        assert_eq!(metrics.depth.get(), 0);
        assert_eq!(metrics.oldest_age.get(), 0.0);
        // A clock that went backwards shows no age, not a negative one.
        metrics.show_backlog(
            &Backlog {
                depth: 1,
                oldest: Some(now + chrono::Duration::seconds(5)),
            },
            now,
        );
        assert_eq!(metrics.oldest_age.get(), 0.0);
    }

    #[test]
    fn text_limits_count_utf16_units() {
        assert!(validate_text("hi").is_ok());
        assert_eq!(validate_text("").unwrap_err().code, "empty");
        assert_eq!(validate_text(" \n\t").unwrap_err().code, "empty");
        assert_eq!(
            validate_text("a\0b").unwrap_err().code,
            "invalid_characters"
        );
        assert_eq!(
            validate_text("bell\u{7}").unwrap_err().code,
            "invalid_characters"
        );
        assert!(validate_text("line one\r\n\tline two").is_ok());
        assert!(validate_text(&"a".repeat(4096)).is_ok());
        assert_eq!(
            validate_text(&"a".repeat(4097)).unwrap_err().code,
            "too_long"
        );
        // An emoji outside the BMP is two UTF-16 units, as Telegram counts it.
        assert!(validate_text(&"😀".repeat(2048)).is_ok());
        assert_eq!(
            validate_text(&"😀".repeat(2049)).unwrap_err().code,
            "too_long"
        );
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("0b7c7c1e-2f1a-4c1e-9e1a-5f0e0e0e0e0e").is_ok());
        assert_eq!(IdempotencyKey::parse("").unwrap_err().code, "empty");
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(256)).unwrap_err().code,
            "too_long"
        );
        assert_eq!(
            IdempotencyKey::parse("a b").unwrap_err().code,
            "invalid_characters"
        );
        assert_eq!(
            IdempotencyKey::parse("ключ").unwrap_err().code,
            "invalid_characters"
        );
        // Never printed.
        assert_eq!(
            format!("{:?}", IdempotencyKey::parse("secret").unwrap()),
            "IdempotencyKey(..)"
        );
    }

    #[test]
    fn the_request_hash_tells_requests_apart() {
        let base = NewMessage {
            account_id: 1,
            user_id: 1,
            idempotency_key: None,
            chat: ChatRef::Me,
            text: "hello".into(),
            reply_to: None,
            silent: false,
            media: None,
        };
        let same = base.clone();
        assert_eq!(base.request_hash(), same.request_hash());
        // A text request's hash is pinned: stored keys outlive upgrades.
        let pinned = serde_json::json!({
            "account": 1, "chat": "me", "kind": "text", "text": "hello",
            "reply_to": null, "silent": false,
        });
        let digest = Sha256::digest(pinned.to_string().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(base.request_hash(), hex);
        let mut other = base.clone();
        other.text = "hello!".into();
        assert_ne!(base.request_hash(), other.request_hash());
        let mut other = base.clone();
        other.account_id = 2;
        assert_ne!(base.request_hash(), other.request_hash());
        let mut other = base.clone();
        other.silent = true;
        assert_ne!(base.request_hash(), other.request_hash());
        // Media: the upload and how it is sent are part of the request.
        let photo = Media {
            upload_id: 7,
            kind: crate::telegram::MediaKind::Photo,
        };
        let mut media = base.clone();
        media.media = Some(photo);
        assert_ne!(base.request_hash(), media.request_hash());
        let mut other = media.clone();
        other.media = Some(Media {
            upload_id: 8,
            ..photo
        });
        assert_ne!(media.request_hash(), other.request_hash());
        let mut other = media.clone();
        other.media = Some(Media {
            kind: crate::telegram::MediaKind::Document,
            ..photo
        });
        assert_ne!(media.request_hash(), other.request_hash());
    }
}
