//! What a limit applies to: a [`Limit`] (which configured quota) and a
//! [`Subject`] (whose grants count), together a [`Key`].

use serde::Serialize;
use std::fmt;

/// One configured quota (`rate_limits.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// `rate_limits.telegram.messages_sent.max` per account.
    AccountMessages,
    /// `rate_limits.telegram.messages_sent.per_chat` per (account, chat).
    ChatMessages,
    /// `rate_limits.telegram.media_uploads` per account.
    MediaUploads,
    /// `rate_limits.telegram.channel_invites` per account.
    ChannelInvites,
    /// `rate_limits.api.standard` per user.
    ApiStandard,
    /// `rate_limits.api.auth` per user.
    ApiAuth,
    /// `rate_limits.websocket.messages` per connection.
    WsMessages,
}

impl Limit {
    /// Every limit, in declaration order.
    pub const ALL: [Limit; 7] = [
        Limit::AccountMessages,
        Limit::ChatMessages,
        Limit::MediaUploads,
        Limit::ChannelInvites,
        Limit::ApiStandard,
        Limit::ApiAuth,
        Limit::WsMessages,
    ];

    /// The snake_case name (metric label, JSON value).
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::AccountMessages => "account_messages",
            Limit::ChatMessages => "chat_messages",
            Limit::MediaUploads => "media_uploads",
            Limit::ChannelInvites => "channel_invites",
            Limit::ApiStandard => "api_standard",
            Limit::ApiAuth => "api_auth",
            Limit::WsMessages => "ws_messages",
        }
    }

    /// Whether the limit holds back a client's own requests (a user's API
    /// calls and uploads, a connection's frames): a refusal is that
    /// client's doing, never a sign of the service's trouble. The others
    /// pace the accounts' sending to Telegram.
    pub fn is_clients_own(self) -> bool {
        matches!(
            self,
            Limit::ApiStandard | Limit::ApiAuth | Limit::WsMessages | Limit::MediaUploads
        )
    }

    /// Position in [`Limit::ALL`].
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose grants a key counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A Telegram account (its id in the accounts table).
    Account(i64),
    /// One chat of an account.
    Chat { account: i64, chat: i64 },
    /// An API user.
    User(i64),
    /// A WebSocket connection.
    Connection(u64),
}

impl Subject {
    /// The account this subject belongs to, if any.
    pub fn account(&self) -> Option<i64> {
        match self {
            Subject::Account(account) | Subject::Chat { account, .. } => Some(*account),
            Subject::User(_) | Subject::Connection(_) => None,
        }
    }
}

/// `account:5`, `chat:5:777`, `user:3`, `connection:9`.
impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Account(a) => write!(f, "account:{a}"),
            Subject::Chat { account, chat } => write!(f, "chat:{account}:{chat}"),
            Subject::User(u) => write!(f, "user:{u}"),
            Subject::Connection(c) => write!(f, "connection:{c}"),
        }
    }
}

/// A limit applied to a subject: what the limiter counts grants of.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub limit: Limit,
    pub subject: Subject,
}

impl Key {
    pub fn new(limit: Limit, subject: Subject) -> Self {
        Self { limit, subject }
    }

    /// Messages sent by an account, all chats together.
    pub fn account_messages(account: i64) -> Self {
        Self::new(Limit::AccountMessages, Subject::Account(account))
    }

    /// Messages sent by an account to one chat.
    pub fn chat_messages(account: i64, chat: i64) -> Self {
        Self::new(Limit::ChatMessages, Subject::Chat { account, chat })
    }

    /// Media uploads by an account.
    pub fn media_uploads(account: i64) -> Self {
        Self::new(Limit::MediaUploads, Subject::Account(account))
    }

    /// Channel invites by an account.
    pub fn channel_invites(account: i64) -> Self {
        Self::new(Limit::ChannelInvites, Subject::Account(account))
    }

    /// Authenticated API requests by a user.
    pub fn api(user: i64) -> Self {
        Self::new(Limit::ApiStandard, Subject::User(user))
    }

    /// Authentication-sensitive API requests by a user.
    pub fn api_auth(user: i64) -> Self {
        Self::new(Limit::ApiAuth, Subject::User(user))
    }

    /// Frames from one WebSocket connection.
    pub fn ws_messages(conn: u64) -> Self {
        Self::new(Limit::WsMessages, Subject::Connection(conn))
    }
}

/// `account_messages/account:5`.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.limit, self.subject)
    }
}
