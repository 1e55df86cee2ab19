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

    /// The outbox accepts messages for an account in this state: it is
    /// connected or on its way there, so they will be delivered.
    pub fn accepts_messages(self) -> bool {
        matches!(
            self,
            Self::Waiting | Self::Connecting | Self::Connected | Self::FloodLimited
        )
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

/// The data of an `account.state` event: the account, its new and previous
/// state, and whatever `detail` adds (an object's fields are merged in).
pub fn state_event(
    account_id: i64,
    state: AccountState,
    previous: Option<AccountState>,
    detail: serde_json::Value,
) -> serde_json::Value {
    let mut data = serde_json::json!({
        "account_id": account_id,
        "state": state,
        "previous": previous,
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (data.as_object_mut(), detail) {
        obj.extend(extra);
    }
    data
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
        // Every state is exported, zeros included, so dashboards see the series.
        for st in AccountState::ALL {
            gauge.with_label_values(&[st.as_str()]).set(0);
        }
        Self {
            states: Arc::default(),
            gauge,
        }
    }

    pub fn get(&self, account_id: i64) -> Option<AccountState> {
        self.lock().get(&account_id).copied()
    }

    /// Sets the account's state; answers the one it had.
    pub fn set(&self, account_id: i64, state: AccountState) -> Option<AccountState> {
        let previous = self.lock().insert(account_id, state);
        self.moved(previous, Some(state));
        previous
    }

    pub fn remove(&self, account_id: i64) {
        let previous = self.lock().remove(&account_id);
        self.moved(previous, None);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, AccountState>> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn moved(&self, from: Option<AccountState>, to: Option<AccountState>) {
        if from == to {
            return;
        }
        if let Some(from) = from {
            self.gauge.with_label_values(&[from.as_str()]).dec();
        }
        if let Some(to) = to {
            self.gauge.with_label_values(&[to.as_str()]).inc();
        }
    }
}
