//! The Telegram port: what the rest of tgvisor needs from Telegram, as
//! traits, with two backends behind them: [`sim`], an in-process simulated
//! Telegram (the development default), and `grammers`, the real MTProto
//! client.
//!
//! - [`Backend`] starts things: a client for a stored session
//!   ([`Backend::connect`]) or a sign-in ([`Backend::request_code`]).
//! - [`Client`] is one signed-in connection: who am I, resolve a chat, send,
//!   history, upload parts, send media, ping.
//! - A connection also yields its stream of [`Incoming`] updates, each with
//!   the [`UpdateState`] that handing it on reaches, and a future that
//!   resolves when the connection dies on its own ([`Connection::closed`]),
//!   which the AccountActor turns into an abnormal exit for its supervisor.
//!   The AccountActor stores each state with the events of the updates that
//!   reached it, and connects again from the last one stored.
//! - Session changes (new DC, new auth key, peers) go to a [`SessionSink`],
//!   which writes them through to the encrypted store.

pub mod error;
pub mod grammers;
pub mod metrics;
pub mod sim;

pub use error::{FloodScope, TgError};

use crate::domain::validation::{ChatRef, PhoneNumber};
use crate::sessions::SessionData;
use async_trait::async_trait;
use futures_util::future::BoxFuture;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The signed-in user.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Me {
    pub id: i64,
    pub username: Option<String>,
    pub first_name: String,
    pub premium: bool,
}

/// What kind of chat a peer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerKind {
    /// The account's own Saved Messages.
    SelfChat,
    User,
    Group,
    Channel,
}

/// A resolved chat.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Peer {
    pub id: i64,
    pub kind: PeerKind,
    pub title: String,
    pub username: Option<String>,
}

/// A message as tgvisor passes it on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    pub id: i32,
    pub chat_id: i64,
    pub sender_id: Option<i64>,
    pub outgoing: bool,
    pub text: String,
    pub date: chrono::DateTime<chrono::Utc>,
    pub reply_to: Option<i32>,
    pub edit_date: Option<chrono::DateTime<chrono::Utc>>,
    pub media: Option<MediaInfo>,
}

/// Media attached to a message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MediaInfo {
    pub kind: MediaKind,
    pub name: Option<String>,
    pub size: u64,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Photo,
    Document,
}

impl MediaKind {
    /// Its name in JSON and in the outbox row's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Photo => "photo",
            Self::Document => "document",
        }
    }

    /// The kind named `s` (`None`: not a media kind, e.g. `text`).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Photo, Self::Document]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Something that happened on Telegram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    NewMessage(Message),
    MessageEdited(Message),
    MessagesDeleted { chat_id: Option<i64>, ids: Vec<i32> },
}

impl Update {
    /// The event name on the account's topic.
    pub fn event_kind(&self) -> &'static str {
        match self {
            Self::NewMessage(_) => "message.new",
            Self::MessageEdited(_) => "message.edited",
            Self::MessagesDeleted { .. } => "message.deleted",
        }
    }

    /// The event payload.
    pub fn payload(&self) -> serde_json::Value {
        match self {
            Self::NewMessage(m) | Self::MessageEdited(m) => serde_json::json!({ "message": m }),
            Self::MessagesDeleted { chat_id, ids } => {
                serde_json::json!({ "chat_id": chat_id, "message_ids": ids })
            }
        }
    }
}

/// Where an account's update stream stands: Telegram's update state
/// (`updates.getState`), advanced past the updates handed on.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpdateState {
    /// The common message box: private chats and small groups.
    pub pts: i32,
    /// The secondary box: secret chats and some bot updates.
    pub qts: i32,
    pub date: i32,
    pub seq: i32,
    /// Each channel's own pts, by channel id.
    #[serde(default)]
    pub channels: Vec<(i64, i32)>,
}

impl UpdateState {
    /// Takes the furthest of both, field by field and channel by channel
    /// (Telegram's counters only grow).
    pub fn merge(&mut self, other: &UpdateState) {
        self.pts = self.pts.max(other.pts);
        self.qts = self.qts.max(other.qts);
        self.date = self.date.max(other.date);
        self.seq = self.seq.max(other.seq);
        for &(id, pts) in &other.channels {
            match self.channels.iter_mut().find(|(c, _)| *c == id) {
                Some((_, p)) => *p = (*p).max(pts),
                None => self.channels.push((id, pts)),
            }
        }
    }
}

/// One step of a connection's update stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// What happened, if it is something tgvisor passes on.
    pub update: Option<Update>,
    /// The update state once this (and everything before it) is handed on;
    /// `None` in the middle of a batch of updates, whose state is only
    /// reached by its last one (and from backends without update state).
    pub state: Option<UpdateState>,
}

impl Incoming {
    /// An update without a state of its own.
    pub fn update(update: Update) -> Self {
        Self {
            update: Some(update),
            state: None,
        }
    }
}

/// How to send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendOptions {
    pub reply_to: Option<i32>,
    pub silent: bool,
    /// Telegram drops a second send with the same random id: a retry after a
    /// lost answer cannot duplicate the message. Derive it from the outbox id.
    pub random_id: i64,
}

/// A file whose parts have all been uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedFile {
    pub file_id: i64,
    pub parts: u32,
    pub name: String,
    pub size: u64,
    /// Uploaded with the big-file method (over 10 MiB).
    pub big: bool,
}

/// Parts above this size use `saveBigFilePart` (Telegram's rule).
pub const BIG_FILE_THRESHOLD: u64 = 10 * 1024 * 1024;
pub use crate::domain::PART_SIZE;

/// Telegram's method for one file part: big files (`total_parts` given) use
/// `saveBigFilePart`.
pub fn part_method(total_parts: Option<u32>) -> &'static str {
    if total_parts.is_some() {
        "upload.saveBigFilePart"
    } else {
        "upload.saveFilePart"
    }
}

/// Where a client writes session changes (through to the encrypted store).
#[async_trait]
pub trait SessionSink: Send + Sync {
    async fn save(&self, data: &SessionData) -> anyhow::Result<()>;
}

/// One signed-in Telegram connection.
#[async_trait]
pub trait Client: Send + Sync {
    async fn get_me(&self) -> Result<Me, TgError>;
    async fn resolve(&self, chat: &ChatRef) -> Result<Peer, TgError>;
    async fn send_text(
        &self,
        chat: &Peer,
        text: &str,
        opts: &SendOptions,
    ) -> Result<Message, TgError>;
    /// The chat's latest `limit` messages, newest first; with `before`,
    /// those older than that message id (the next page).
    async fn history(
        &self,
        chat: &Peer,
        limit: u32,
        before: Option<i32>,
    ) -> Result<Vec<Message>, TgError>;
    /// Uploads part `part` (0-based) of file `file_id`. `total_parts` is
    /// given for big files (Telegram's `saveBigFilePart`).
    async fn save_file_part(
        &self,
        file_id: i64,
        part: u32,
        total_parts: Option<u32>,
        bytes: &[u8],
    ) -> Result<(), TgError>;
    async fn send_media(
        &self,
        chat: &Peer,
        file: &UploadedFile,
        kind: MediaKind,
        caption: &str,
        opts: &SendOptions,
    ) -> Result<Message, TgError>;
    /// Round trip to the home DC.
    async fn ping(&self) -> Result<Duration, TgError>;
    /// Saves the session's pending changes (DCs, keys, peers) now; they are
    /// also saved as they happen, and at close.
    async fn sync_state(&self) -> Result<(), TgError>;
    /// Closes the connection cleanly.
    async fn disconnect(&self);
}

/// A running connection.
pub struct Connection {
    pub client: Arc<dyn Client>,
    /// In order; ends when the connection does.
    pub updates: mpsc::Receiver<Incoming>,
    /// Resolves with the reason when the connection dies on its own.
    pub closed: BoxFuture<'static, TgError>,
}

/// The next step of a sign-in.
pub enum LoginStep {
    /// Signed in: store this session.
    Done { session: SessionData, me: Me },
    /// Two-step verification is on: submit the password next.
    PasswordNeeded {
        hint: Option<String>,
        pending: Box<dyn PendingPassword>,
    },
}

/// A sign-in waiting for the code sent to the phone. It holds the client
/// that asked for the code: the login token cannot be persisted.
#[async_trait]
pub trait PendingCode: Send {
    async fn submit_code(
        self: Box<Self>,
        code: &str,
    ) -> Result<LoginStep, (TgError, Option<Box<dyn PendingCode>>)>;
}

/// A sign-in waiting for the 2FA password.
#[async_trait]
pub trait PendingPassword: Send {
    async fn submit_password(
        self: Box<Self>,
        password: SecretString,
    ) -> Result<LoginStep, (TgError, Option<Box<dyn PendingPassword>>)>;
}

/// A Telegram implementation.
#[async_trait]
pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    /// Starts a client for a stored session. Its updates continue from
    /// `resume` (the last state stored), else from the state the session
    /// holds (a sign-in's), else from Telegram's state now, which is then
    /// the stream's first [`Incoming`].
    async fn connect(
        &self,
        session: SessionData,
        resume: Option<UpdateState>,
        sink: Arc<dyn SessionSink>,
    ) -> Result<Connection, TgError>;
    /// Starts a sign-in: Telegram sends a code to the phone.
    async fn request_code(&self, phone: &PhoneNumber) -> Result<Box<dyn PendingCode>, TgError>;
}
