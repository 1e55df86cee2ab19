//! The account state machine, as the API, the events and the metrics show it.
//!
//! ```text
//! awaiting_code ─► awaiting_password ─┐            (sign-in over the API)
//!       │                 │           ▼
//!       └─────────────────┴──► login_expired
//! waiting ─► connecting ─► connected ⇄ flood_limited
//!                │             │
//!                ▼             ▼
//!   unauthorized · revoked · banned · duplicate_key   (terminal: need the user)
//! stopped (by the user or the service) · failed (crashed too often)
//! ```
//! `waiting` means the node's client pool (`telegram.client_pool_size`) is
//! full: the account connects as soon as a slot frees up.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    AwaitingCode,
    AwaitingPassword,
    LoginExpired,
    Waiting,
    Connecting,
    Connected,
    FloodLimited,
    Unauthorized,
    Revoked,
    Banned,
    DuplicateKey,
    Stopped,
    Failed,
}

impl AccountState {
    pub const ALL: [AccountState; 13] = [
        Self::AwaitingCode,
        Self::AwaitingPassword,
        Self::LoginExpired,
        Self::Waiting,
        Self::Connecting,
        Self::Connected,
        Self::FloodLimited,
        Self::Unauthorized,
        Self::Revoked,
        Self::Banned,
        Self::DuplicateKey,
        Self::Stopped,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingCode => "awaiting_code",
            Self::AwaitingPassword => "awaiting_password",
            Self::LoginExpired => "login_expired",
            Self::Waiting => "waiting",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::FloodLimited => "flood_limited",
            Self::Unauthorized => "unauthorized",
            Self::Revoked => "revoked",
            Self::Banned => "banned",
            Self::DuplicateKey => "duplicate_key",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The session cannot be used until its owner acts (signs in again).
    pub fn needs_user(self) -> bool {
        matches!(
            self,
            Self::Unauthorized | Self::Revoked | Self::Banned | Self::DuplicateKey
        )
    }

    /// A sign-in over the API has not finished (or was abandoned).
    pub fn signing_in(self) -> bool {
        matches!(
            self,
            Self::AwaitingCode | Self::AwaitingPassword | Self::LoginExpired
        )
    }

    /// Whether the service starts a client for an account in this state at boot.
    pub fn starts_at_boot(self) -> bool {
        !self.needs_user() && !self.signing_in() && self != Self::Stopped
    }

    /// The outbox accepts messages for an account in this state: it is
    /// connected or on its way there, so they will be delivered.
    pub fn accepts_messages(self) -> bool {
        matches!(
            self,
            Self::Waiting | Self::Connecting | Self::Connected | Self::FloodLimited
        )
    }
}

impl std::fmt::Display for AccountState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
