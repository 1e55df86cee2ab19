//! What the outbox answers: an accepted message, and a message as the API
//! shows it.

use crate::domain::MessageStatus;
use crate::entities::outbox;
use serde::Serialize;

/// The answer to an accepted (or replayed) message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub message_id: i64,
    pub status: MessageStatus,
    /// An earlier request with the same idempotency key was answered.
    pub replayed: bool,
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
