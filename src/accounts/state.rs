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

use crate::telegram::TgError;
use prometheus::IntGaugeVec;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

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

    /// The state a session-fatal error leads to.
    pub fn from_fatal(err: &TgError) -> Option<Self> {
        match err {
            TgError::Unauthorized => Some(Self::Unauthorized),
            TgError::Revoked => Some(Self::Revoked),
            TgError::Banned => Some(Self::Banned),
            TgError::AuthKeyDuplicated => Some(Self::DuplicateKey),
            _ => None,
        }
    }
}

impl std::fmt::Display for AccountState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where every account on this node is, for the gauge and for callers that
/// must not wait on an actor to learn it. Cheap to clone.
#[derive(Clone)]
pub struct StateBoard {
    states: Arc<Mutex<HashMap<i64, AccountState>>>,
    gauge: IntGaugeVec,
}

impl StateBoard {
    pub fn new(gauge: IntGaugeVec) -> Self {
        let board = Self {
            states: Arc::default(),
            gauge,
        };
        board.publish(&HashMap::new());
        board
    }

    pub fn get(&self, account_id: i64) -> Option<AccountState> {
        self.lock().get(&account_id).copied()
    }

    pub fn set(&self, account_id: i64, state: AccountState) {
        let mut states = self.lock();
        states.insert(account_id, state);
        self.publish(&states);
    }

    pub fn remove(&self, account_id: i64) {
        let mut states = self.lock();
        states.remove(&account_id);
        self.publish(&states);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, AccountState>> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every state is exported, zeros included, so dashboards see the series.
    fn publish(&self, states: &HashMap<i64, AccountState>) {
        for st in AccountState::ALL {
            let n = states.values().filter(|s| **s == st).count();
            self.gauge
                .with_label_values(&[st.as_str()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}
