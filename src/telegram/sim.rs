//! An in-process simulated Telegram: the development default, so that
//! `tgvisor serve` runs with no Telegram credentials, and the world the
//! loopback fake MTProto server serves in tests.
//!
//! Conventions (Telegram's test DCs):
//! - phone numbers `+99966XYYYY` sign in on DC X (1–3) with the code made of
//!   the digit X five times (`+9996621234` → `22222`); other numbers are
//!   `PHONE_NUMBER_INVALID`;
//! - numbers whose `YYYY` starts with `9` have two-step verification on,
//!   with the password [`SIM_2FA_PASSWORD`];
//! - `me` is Saved Messages; `@echo` answers every text with the same text.
//!
//! Faults can be injected at run time: latency, FLOOD_WAIT (global, per
//! method, per chat), failing calls that drop the connection, revoked
//! sessions and banned accounts.

use super::{
    Backend, Client, Connection, FloodScope, Incoming, LoginStep, Me, MediaInfo, MediaKind,
    Message, Peer, PeerKind, PendingCode, PendingPassword, SendOptions, SessionSink, TgError,
    Update, UpdateState, UploadedFile,
};
use crate::domain::validation::{ChatRef, PhoneNumber};
use crate::sessions::{AuthKey, DcEntry, SessionData};
use async_trait::async_trait;
use futures_util::FutureExt;
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The 2FA password of sim numbers that have one.
pub const SIM_2FA_PASSWORD: &str = "sim-password";
/// The id of the `@echo` user.
pub const ECHO_USER_ID: i64 = 1_000_001;
/// How long a login code stays valid.
pub const CODE_TTL: Duration = Duration::from_secs(300);
/// Capacity of each connection's update channel.
const UPDATES_CAPACITY: usize = 1024;

/// A FLOOD_WAIT to inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FloodRule {
    pub target: FloodTarget,
    pub seconds: u32,
    /// How many matching calls get it.
    pub times: u32,
}

/// Which calls a [`FloodRule`] hits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FloodTarget {
    /// Every call (account-wide wait).
    Global,
    /// One method, e.g. `messages.sendMessage` (account-wide wait).
    Method(String),
    /// Calls about one chat (per-chat wait, like SLOWMODE_WAIT).
    Chat(i64),
}

#[derive(Clone, Debug)]
struct SimUser {
    id: i64,
    username: Option<String>,
    first_name: String,
    banned: bool,
}

struct KeyEntry {
    user_id: i64,
    revoked: bool,
    /// Open connections using the key.
    connections: usize,
}

struct ConnEntry {
    user_id: i64,
    key: Vec<u8>,
    kill: Option<oneshot::Sender<TgError>>,
    updates: mpsc::Sender<Incoming>,
}

#[derive(Default)]
struct State {
    next_user_id: i64,
    next_conn_id: u64,
    latency: Duration,
    users: HashMap<i64, SimUser>,
    by_phone: HashMap<String, i64>,
    keys: HashMap<Vec<u8>, KeyEntry>,
    conns: HashMap<u64, ConnEntry>,
    /// (user, peer) → messages, oldest first.
    dialogs: HashMap<(i64, i64), Vec<Message>>,
    next_msg_id: HashMap<i64, i32>,
    /// (user, random_id) → the message it created.
    random_ids: HashMap<(i64, i64), Message>,
    floods: Vec<FloodRule>,
    failing_calls: u32,
    failing_parts: u32,
    /// (user, file id) → part → size.
    uploads: HashMap<(i64, i64), BTreeMap<u32, usize>>,
    /// Calls made, by method (for tests and metrics checks).
    calls: BTreeMap<String, u64>,
    /// Calls under way, and the most at once, by method.
    in_flight: HashMap<String, u32>,
    most_in_flight: HashMap<String, u32>,
    /// Accept auth keys this world never issued (see [`SimWorld::adopt_unknown_keys`]).
    adopt_unknown_keys: bool,
}

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

/// DC X's address in the sim (Telegram's real production addresses; never dialled).
fn dc_addr(dc: i32) -> SocketAddrV4 {
    let last = match dc {
        1 => 50,
        2 => 51,
        3 => 100,
        _ => 51,
    };
    SocketAddrV4::new(Ipv4Addr::new(149, 154, 167, last), 443)
}

/// `(dc, code, two_factor)` for a sim phone number.
fn parse_sim_phone(e164: &str) -> Option<(i32, String, bool)> {
    let rest = e164.strip_prefix("+99966")?;
    let bytes = rest.as_bytes();
    if bytes.len() != 5 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let dc = i32::from(bytes[0] - b'0');
    if !(1..=3).contains(&dc) {
        return None;
    }
    let code = std::iter::repeat_n(char::from(bytes[0]), 5).collect();
    Some((dc, code, bytes[1] == b'9'))
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

    fn lock(&self) -> MutexGuard<'_, State> {
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
    async fn call(
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
        let hit = state.floods.iter_mut().find(|r| {
            r.times > 0
                && match &r.target {
                    FloodTarget::Global => true,
                    FloodTarget::Method(m) => m == method,
                    FloodTarget::Chat(c) => chat == Some(*c),
                }
        });
        if let Some(rule) = hit {
            rule.times -= 1;
            let scope = match rule.target {
                FloodTarget::Chat(chat_id) => FloodScope::Chat { chat_id },
                _ => FloodScope::Account,
            };
            return Err(TgError::FloodWait {
                seconds: rule.seconds,
                scope,
            });
        }
        Ok(())
    }
}

impl State {
    fn sign_up(&mut self, e164: &str) -> i64 {
        if let Some(&id) = self.by_phone.get(e164) {
            return id;
        }
        self.next_user_id += 1;
        let id = self.next_user_id;
        let tail = &e164[e164.len().saturating_sub(4)..];
        self.users.insert(
            id,
            SimUser {
                id,
                username: None,
                first_name: format!("Sim {tail}"),
                banned: false,
            },
        );
        self.by_phone.insert(e164.to_owned(), id);
        id
    }

    /// Registers a key this world did not issue (see `adopt_unknown_keys`).
    fn adopt(&mut self, key: &[u8], user_id: Option<i64>) {
        let id = match user_id {
            Some(id) if id > 0 => id,
            _ => {
                self.next_user_id += 1;
                self.next_user_id
            }
        };
        self.next_user_id = self.next_user_id.max(id);
        self.users.entry(id).or_insert_with(|| SimUser {
            id,
            username: None,
            first_name: format!("Sim {id}"),
            banned: false,
        });
        self.keys.insert(
            key.to_vec(),
            KeyEntry {
                user_id: id,
                revoked: false,
                connections: 0,
            },
        );
    }

    fn new_session(&mut self, user_id: i64, dc: i32) -> SessionData {
        let mut key = [0u8; 256];
        rand::Rng::fill(&mut rand::rng(), &mut key[..]);
        self.keys.insert(
            key.to_vec(),
            KeyEntry {
                user_id,
                revoked: false,
                connections: 0,
            },
        );
        let mut data = SessionData::single_dc(DcEntry {
            id: dc,
            ipv4: Some(dc_addr(dc)),
            ipv6: None,
            auth_key: Some(AuthKey::new(key)),
        });
        data.user_id = Some(user_id);
        data
    }

    fn me(&self, user_id: i64) -> Me {
        let u = &self.users[&user_id];
        Me {
            id: u.id,
            username: u.username.clone(),
            first_name: u.first_name.clone(),
            premium: false,
        }
    }

    fn next_id(&mut self, user: i64) -> i32 {
        let n = self.next_msg_id.entry(user).or_insert(0);
        *n += 1;
        *n
    }

    /// Records a message in `owner`'s dialog with `peer`.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        owner: i64,
        peer: i64,
        sender: i64,
        text: &str,
        reply_to: Option<i32>,
        media: Option<MediaInfo>,
    ) -> Message {
        let message = Message {
            id: self.next_id(owner),
            chat_id: peer,
            sender_id: Some(sender),
            outgoing: sender == owner,
            text: text.to_owned(),
            date: chrono::Utc::now(),
            reply_to,
            edit_date: None,
            media,
        };
        self.dialogs
            .entry((owner, peer))
            .or_default()
            .push(message.clone());
        message
    }

    /// `from` writes `text` to `to`: stored in `to`'s dialog and pushed to
    /// `to`'s connections.
    fn incoming(&mut self, to: i64, from: i64, text: &str) -> Message {
        let message = self.record(to, from, from, text, None, None);
        self.push(to, Update::NewMessage(message.clone()));
        message
    }

    fn push(&mut self, user: i64, update: Update) {
        for conn in self.conns.values().filter(|c| c.user_id == user) {
            if conn
                .updates
                .try_send(Incoming::update(update.clone()))
                .is_err()
            {
                tracing::warn!("a sim connection's update channel is full or closed");
            }
        }
    }

    /// Delivers an outgoing message to its recipient's side.
    fn deliver(&mut self, from: i64, to: i64, text: &str) {
        if to == from {
            return; // Saved Messages
        }
        if to == ECHO_USER_ID {
            self.incoming(from, ECHO_USER_ID, text);
        } else if self.users.contains_key(&to) {
            self.incoming(to, from, text);
        }
    }
}

/// The sim [`Backend`].
#[derive(Clone, Debug, Default)]
pub struct SimBackend {
    pub world: SimWorld,
}

impl SimBackend {
    pub fn new(world: SimWorld) -> Self {
        Self { world }
    }
}

#[async_trait]
impl Backend for SimBackend {
    fn name(&self) -> &'static str {
        "sim"
    }

    /// The sim keeps no update log: `resume` is ignored, updates come live.
    async fn connect(
        &self,
        session: SessionData,
        _resume: Option<UpdateState>,
        sink: Arc<dyn SessionSink>,
    ) -> Result<Connection, TgError> {
        self.world.call(None, "connect", None).await?;
        let key = session
            .dcs
            .iter()
            .find(|d| d.id == session.home_dc)
            .and_then(|d| d.auth_key.as_ref())
            .ok_or(TgError::Unauthorized)?
            .expose()
            .to_vec();
        let (kill_tx, kill_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(UPDATES_CAPACITY);
        let (conn_id, user_id) = {
            let mut state = self.world.lock();
            if state.adopt_unknown_keys && !state.keys.contains_key(&key) {
                state.adopt(&key, session.user_id);
            }
            let entry = state.keys.get_mut(&key).ok_or(TgError::Unauthorized)?;
            if entry.revoked {
                return Err(TgError::Revoked);
            }
            if entry.connections > 0 {
                return Err(TgError::AuthKeyDuplicated);
            }
            let user_id = entry.user_id;
            if state.users.get(&user_id).is_none_or(|u| u.banned) {
                return Err(TgError::Banned);
            }
            if let Some(entry) = state.keys.get_mut(&key) {
                entry.connections += 1;
            }
            state.next_conn_id += 1;
            let id = state.next_conn_id;
            state.conns.insert(
                id,
                ConnEntry {
                    user_id,
                    key: key.clone(),
                    kill: Some(kill_tx),
                    updates: tx,
                },
            );
            (id, user_id)
        };
        let client = Arc::new(SimClient {
            world: self.world.clone(),
            conn_id,
            user_id,
            session: Mutex::new(session),
            sink,
        });
        let closed = async move {
            kill_rx
                .await
                .unwrap_or_else(|_| TgError::Network("the connection was closed".into()))
        }
        .boxed();
        Ok(Connection {
            client,
            updates: rx,
            closed,
        })
    }

    async fn request_code(&self, phone: &PhoneNumber) -> Result<Box<dyn PendingCode>, TgError> {
        self.world.call(None, "auth.sendCode", None).await?;
        let (dc, code, two_factor) =
            parse_sim_phone(phone.as_e164()).ok_or(TgError::PhoneNumberInvalid)?;
        let banned = {
            let state = self.world.lock();
            state
                .by_phone
                .get(phone.as_e164())
                .and_then(|id| state.users.get(id))
                .is_some_and(|u| u.banned)
        };
        if banned {
            return Err(TgError::Banned);
        }
        Ok(Box::new(SimPendingCode {
            world: self.world.clone(),
            phone: phone.as_e164().to_owned(),
            dc,
            code,
            two_factor,
            expires: tokio::time::Instant::now() + CODE_TTL,
        }))
    }
}

struct SimPendingCode {
    world: SimWorld,
    phone: String,
    dc: i32,
    code: String,
    two_factor: bool,
    expires: tokio::time::Instant,
}

#[async_trait]
impl PendingCode for SimPendingCode {
    async fn submit_code(
        self: Box<Self>,
        code: &str,
    ) -> Result<LoginStep, (TgError, Option<Box<dyn PendingCode>>)> {
        if let Err(e) = self.world.call(None, "auth.signIn", None).await {
            return Err((e, Some(self)));
        }
        if tokio::time::Instant::now() >= self.expires {
            return Err((TgError::CodeExpired, None));
        }
        if code.trim() != self.code {
            return Err((TgError::CodeInvalid, Some(self)));
        }
        if self.two_factor {
            return Ok(LoginStep::PasswordNeeded {
                hint: Some("the sim password".to_owned()),
                pending: Box::new(SimPendingPassword {
                    world: self.world.clone(),
                    phone: self.phone.clone(),
                    dc: self.dc,
                }),
            });
        }
        Ok(finish(&self.world, &self.phone, self.dc))
    }
}

fn finish(world: &SimWorld, phone: &str, dc: i32) -> LoginStep {
    let mut state = world.lock();
    let user_id = state.sign_up(phone);
    let session = state.new_session(user_id, dc);
    LoginStep::Done {
        session,
        me: state.me(user_id),
    }
}

struct SimPendingPassword {
    world: SimWorld,
    phone: String,
    dc: i32,
}

#[async_trait]
impl PendingPassword for SimPendingPassword {
    async fn submit_password(
        self: Box<Self>,
        password: SecretString,
    ) -> Result<LoginStep, (TgError, Option<Box<dyn PendingPassword>>)> {
        if let Err(e) = self.world.call(None, "auth.checkPassword", None).await {
            return Err((e, Some(self)));
        }
        if password.expose_secret() != SIM_2FA_PASSWORD {
            return Err((TgError::PasswordInvalid, Some(self)));
        }
        Ok(finish(&self.world, &self.phone, self.dc))
    }
}

/// One sim connection.
struct SimClient {
    world: SimWorld,
    conn_id: u64,
    user_id: i64,
    session: Mutex<SessionData>,
    sink: Arc<dyn SessionSink>,
}

impl SimClient {
    fn check_banned(&self, state: &State) -> Result<(), TgError> {
        if state.users.get(&self.user_id).is_none_or(|u| u.banned) {
            return Err(TgError::Banned);
        }
        Ok(())
    }

    fn close(&self) {
        let mut state = self.world.lock();
        if let Some(conn) = state.conns.remove(&self.conn_id)
            && let Some(key) = state.keys.get_mut(&conn.key)
        {
            key.connections = key.connections.saturating_sub(1);
        }
    }
}

impl Drop for SimClient {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait]
impl Client for SimClient {
    async fn get_me(&self) -> Result<Me, TgError> {
        self.world
            .call(Some(self.conn_id), "users.getFullUser", None)
            .await?;
        let state = self.world.lock();
        self.check_banned(&state)?;
        Ok(state.me(self.user_id))
    }

    async fn resolve(&self, chat: &ChatRef) -> Result<Peer, TgError> {
        self.world
            .call(Some(self.conn_id), "contacts.resolveUsername", None)
            .await?;
        let state = self.world.lock();
        let user = match chat {
            ChatRef::Me => {
                return Ok(Peer {
                    id: self.user_id,
                    kind: PeerKind::SelfChat,
                    title: "Saved Messages".to_owned(),
                    username: None,
                });
            }
            ChatRef::Username(name) => state.users.values().find(|u| {
                u.username
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            }),
            ChatRef::Id(id) => state.users.get(id),
        };
        let user = user.ok_or(TgError::PeerInvalid)?;
        Ok(Peer {
            id: user.id,
            kind: if user.id == self.user_id {
                PeerKind::SelfChat
            } else {
                PeerKind::User
            },
            title: user.first_name.clone(),
            username: user.username.clone(),
        })
    }

    async fn send_text(
        &self,
        chat: &Peer,
        text: &str,
        opts: &SendOptions,
    ) -> Result<Message, TgError> {
        self.world
            .call(Some(self.conn_id), "messages.sendMessage", Some(chat.id))
            .await?;
        if text.trim().is_empty() {
            return Err(TgError::BadRequest("MESSAGE_EMPTY".into()));
        }
        if text.chars().count() > 4096 {
            return Err(TgError::BadRequest("MESSAGE_TOO_LONG".into()));
        }
        let mut state = self.world.lock();
        self.check_banned(&state)?;
        if !state.users.contains_key(&chat.id) {
            return Err(TgError::PeerInvalid);
        }
        if opts.random_id != 0
            && let Some(m) = state.random_ids.get(&(self.user_id, opts.random_id))
        {
            return Ok(m.clone()); // Telegram's duplicate suppression
        }
        let message = state.record(
            self.user_id,
            chat.id,
            self.user_id,
            text,
            opts.reply_to,
            None,
        );
        if opts.random_id != 0 {
            state
                .random_ids
                .insert((self.user_id, opts.random_id), message.clone());
        }
        state.deliver(self.user_id, chat.id, text);
        Ok(message)
    }

    async fn history(
        &self,
        chat: &Peer,
        limit: u32,
        before: Option<i32>,
    ) -> Result<Vec<Message>, TgError> {
        self.world
            .call(Some(self.conn_id), "messages.getHistory", Some(chat.id))
            .await?;
        let state = self.world.lock();
        let all = state.dialogs.get(&(self.user_id, chat.id));
        Ok(all
            .map(|m| {
                m.iter()
                    .rev()
                    .filter(|m| before.is_none_or(|b| m.id < b))
                    .take(limit as usize)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn save_file_part(
        &self,
        file_id: i64,
        part: u32,
        total_parts: Option<u32>,
        bytes: &[u8],
    ) -> Result<(), TgError> {
        let method = super::part_method(total_parts);
        self.world.call(Some(self.conn_id), method, None).await?;
        let mut state = self.world.lock();
        if state.failing_parts > 0 {
            state.failing_parts -= 1;
            return Err(TgError::Network("part upload failed in the sim".into()));
        }
        if bytes.is_empty() || bytes.len() > super::PART_SIZE {
            return Err(TgError::BadRequest("FILE_PART_INVALID".into()));
        }
        state
            .uploads
            .entry((self.user_id, file_id))
            .or_default()
            .insert(part, bytes.len());
        Ok(())
    }

    async fn send_media(
        &self,
        chat: &Peer,
        file: &UploadedFile,
        kind: MediaKind,
        caption: &str,
        opts: &SendOptions,
    ) -> Result<Message, TgError> {
        self.world
            .call(Some(self.conn_id), "messages.sendMedia", Some(chat.id))
            .await?;
        let mut state = self.world.lock();
        self.check_banned(&state)?;
        if !state.users.contains_key(&chat.id) {
            return Err(TgError::PeerInvalid);
        }
        let parts = state.uploads.get(&(self.user_id, file.file_id));
        let complete = parts.is_some_and(|p| {
            p.len() == file.parts as usize
                && p.keys().copied().eq(0..file.parts)
                && p.values().map(|n| *n as u64).sum::<u64>() == file.size
        });
        if !complete {
            return Err(TgError::BadRequest("FILE_PARTS_INVALID".into()));
        }
        if opts.random_id != 0
            && let Some(m) = state.random_ids.get(&(self.user_id, opts.random_id))
        {
            return Ok(m.clone());
        }
        let media = MediaInfo {
            kind,
            name: Some(file.name.clone()),
            size: file.size,
        };
        let message = state.record(
            self.user_id,
            chat.id,
            self.user_id,
            caption,
            opts.reply_to,
            Some(media),
        );
        if opts.random_id != 0 {
            state
                .random_ids
                .insert((self.user_id, opts.random_id), message.clone());
        }
        Ok(message)
    }

    async fn ping(&self) -> Result<Duration, TgError> {
        let started = tokio::time::Instant::now();
        self.world.call(Some(self.conn_id), "ping", None).await?;
        Ok(started.elapsed())
    }

    async fn sync_state(&self) -> Result<(), TgError> {
        let data = self
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.sink.save(&data).await.map_err(|e| TgError::Other {
            code: 0,
            name: format!("session write failed: {e}"),
        })
    }

    async fn disconnect(&self) {
        self.close();
    }
}

#[cfg(test)]
mod tests;

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
