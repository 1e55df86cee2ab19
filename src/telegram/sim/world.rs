//! [`SimWorld`]: the handle on the simulated Telegram that tests and the
//! fake MTProto server hold, to inject faults and look inside; and the
//! latency and faults every simulated call goes through.

use super::conventions::{ECHO_USER_ID, parse_sim_phone};
use super::flood::{self, FloodRule};
use super::state::{SimUser, State};
use crate::sessions::{AuthKey, SessionData};
use crate::telegram::{Me, Message, TgError};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The simulated world. Cheap to clone; all clones share it.
#[derive(Clone)]
pub struct SimWorld {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for SimWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimWorld(..)")
    }
}

impl Default for SimWorld {
    fn default() -> Self {
        Self::new(Duration::ZERO)
    }
}

impl SimWorld {
    pub fn new(latency: Duration) -> Self {
        let mut state = State {
            next_user_id: 100_000,
            latency,
            ..State::default()
        };
        state.users.insert(
            ECHO_USER_ID,
            SimUser {
                id: ECHO_USER_ID,
                username: Some("echo".to_owned()),
                first_name: "Echo".to_owned(),
                banned: false,
            },
        );
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The world lives in memory: after a restart of `tgvisor serve` it has
    /// forgotten the keys it issued. With this on (the service turns it on
    /// for the sim backend), a key it does not know is taken as a valid
    /// authorization of the user id the session names, so development
    /// accounts survive restarts. Tests leave it off: an unknown key is then
    /// `Unauthorized`, as on Telegram.
    pub fn adopt_unknown_keys(&self, on: bool) {
        self.lock().adopt_unknown_keys = on;
    }

    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    pub fn inject_flood(&self, rule: FloodRule) {
        self.lock().floods.push(rule);
    }

    /// The next `n` calls fail with a network error and drop their connection.
    pub fn fail_next_calls(&self, n: u32) {
        self.lock().failing_calls = n;
    }

    /// The next `n` file parts fail with a network error (the connection stays).
    pub fn fail_next_parts(&self, n: u32) {
        self.lock().failing_parts = n;
    }

    /// Drops every open connection, as a network outage would.
    pub fn drop_connections(&self) {
        let mut state = self.lock();
        for conn in state.conns.values_mut() {
            if let Some(kill) = conn.kill.take() {
                let _ = kill.send(TgError::Network("connection reset by the sim".into()));
            }
        }
    }

    /// Terminates every authorization of the user with this phone number.
    pub fn revoke_sessions(&self, e164: &str) {
        let mut state = self.lock();
        let Some(&user_id) = state.by_phone.get(e164) else {
            return;
        };
        for key in state.keys.values_mut().filter(|k| k.user_id == user_id) {
            key.revoked = true;
        }
        for conn in state.conns.values_mut().filter(|c| c.user_id == user_id) {
            if let Some(kill) = conn.kill.take() {
                let _ = kill.send(TgError::Revoked);
            }
        }
    }

    /// Bans the account with this phone number.
    pub fn ban(&self, e164: &str) {
        let mut state = self.lock();
        if let Some(&id) = state.by_phone.get(e164)
            && let Some(user) = state.users.get_mut(&id)
        {
            user.banned = true;
        }
    }

    /// Another Telegram user writes to the account with this phone number.
    pub fn deliver_from(&self, from: i64, to_phone: &str, text: &str) -> Option<Message> {
        let mut state = self.lock();
        let to = *state.by_phone.get(to_phone)?;
        Some(state.incoming(to, from, text))
    }

    /// How many times each method was called.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.lock().calls.clone()
    }

    /// The Telegram user id behind a phone number, once signed up.
    pub fn user_id(&self, e164: &str) -> Option<i64> {
        self.lock().by_phone.get(e164).copied()
    }

    /// The messages between a user and a peer, oldest first (tests).
    pub fn dialog(&self, e164: &str, peer: i64) -> Vec<Message> {
        let state = self.lock();
        state
            .by_phone
            .get(e164)
            .and_then(|user| state.dialogs.get(&(*user, peer)))
            .cloned()
            .unwrap_or_default()
    }

    /// The most calls of `method` that were under way at once.
    pub fn most_in_flight(&self, method: &str) -> u32 {
        self.lock().most_in_flight.get(method).copied().unwrap_or(0)
    }

    /// The files `e164` uploaded: file id → part number → part size.
    pub fn uploaded(&self, e164: &str) -> HashMap<i64, BTreeMap<u32, usize>> {
        let state = self.lock();
        let Some(user) = state.by_phone.get(e164).copied() else {
            return HashMap::new();
        };
        state
            .uploads
            .iter()
            .filter(|((u, _), _)| *u == user)
            .map(|((_, file), parts)| (*file, parts.clone()))
            .collect()
    }

    /// A session for `e164` as if it had signed in elsewhere (tests, imports).
    pub fn authorize(&self, e164: &str) -> Option<SessionData> {
        let (dc, _, _) = parse_sim_phone(e164)?;
        let mut state = self.lock();
        let user_id = state.sign_up(e164);
        Some(state.new_session(user_id, dc))
    }

    /// Sleeps the configured latency, then applies injected faults.
    pub(super) async fn call(
        &self,
        conn_id: Option<u64>,
        method: &str,
        chat: Option<i64>,
    ) -> Result<(), TgError> {
        let latency = {
            let mut state = self.lock();
            let n = state.in_flight.entry(method.to_owned()).or_default();
            *n += 1;
            let n = *n;
            let most = state.most_in_flight.entry(method.to_owned()).or_default();
            *most = (*most).max(n);
            state.latency
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut state = self.lock();
        if let Some(n) = state.in_flight.get_mut(method) {
            *n = n.saturating_sub(1);
        }
        *state.calls.entry(method.to_owned()).or_default() += 1;
        if let Some(id) = conn_id {
            match state.conns.get(&id) {
                Some(c) if c.kill.is_some() => {}
                _ => return Err(TgError::Network("the connection is closed".into())),
            }
        }
        if state.failing_calls > 0 {
            state.failing_calls -= 1;
            if let Some(kill) = conn_id
                .and_then(|id| state.conns.get_mut(&id))
                .and_then(|c| c.kill.take())
            {
                let _ = kill.send(TgError::Network("connection reset by the sim".into()));
            }
            return Err(TgError::Network("connection reset by the sim".into()));
        }
        if let Some(e) = flood::take(&mut state.floods, method, chat) {
            return Err(e);
        }
        Ok(())
    }
}

// Used by the fake MTProto server.
impl SimWorld {
    /// Every auth key issued so far, with the user it signs in and that
    /// user's home DC.
    pub fn issued_keys(&self) -> Vec<(AuthKey, i64, i32)> {
        let state = self.lock();
        let dc_of = |user_id: i64| {
            state
                .by_phone
                .iter()
                .find(|(_, id)| **id == user_id)
                .and_then(|(phone, _)| parse_sim_phone(phone))
                .map_or(2, |(dc, _, _)| dc)
        };
        state
            .keys
            .iter()
            .filter_map(|(key, entry)| {
                let bytes: [u8; 256] = key.as_slice().try_into().ok()?;
                Some((AuthKey::new(bytes), entry.user_id, dc_of(entry.user_id)))
            })
            .collect()
    }

    /// A user's public profile, with no latency, faults or call counting.
    pub fn profile(&self, user_id: i64) -> Option<Me> {
        let state = self.lock();
        state
            .users
            .contains_key(&user_id)
            .then(|| state.me(user_id))
    }
}
