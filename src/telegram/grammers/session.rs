//! tgvisor's [`grammers_session::Session`]: everything grammers asks for is
//! served from memory (`home_dc_id` and `dc_option` are synchronous and
//! called on every request), and every change is written through to the
//! account's [`SessionSink`] as our own [`SessionData`].
//!
//! Writes never block grammers: a setter changes the in-memory state, bumps
//! a generation counter and wakes a dedicated writer task. The writer
//! snapshots the whole session and saves it; changes made while a save is
//! under way are coalesced into the next save, and because there is one
//! writer the store sees the snapshots in order. DC options, auth keys,
//! the home DC and new peers are saved as soon as the writer can; a failed
//! save is tried again on the writer's tick and by [`TgSession::flush`].
//!
//! The update state has two places:
//! - the state a connection *starts* from (what grammers loads): the
//!   account's stored state, or the sign-in's, or Telegram's at connect
//!   time. It is part of the session blob, for sessions that have no
//!   stored state yet;
//! - once the connection streams ([`TgSession::arm`]), grammers' later
//!   states are kept apart ([`TgSession::live_update_state`]) and never
//!   reach the blob: the update pump hands them on with the updates they
//!   cover, to be stored with their events. A blob that ran ahead of the
//!   stored events would make a restart skip updates never announced.
//!
//! Until [`TgSession::arm`] is called the writer holds everything back:
//! `connect` arms it only after the authorization has been verified, so a
//! failed connection never touches the stored session.

use crate::sessions::{AuthKey, DcEntry, SessionData};
use crate::telegram::{PeerKind as OurPeerKind, SessionSink, UpdateState as OurUpdateState};
use grammers_session::types::{
    ChannelKind, ChannelState, DcOption, PeerAuth, PeerId, PeerInfo, PeerKind, UpdateState,
    UpdatesState,
};
use grammers_session::{BoxFuture, Session};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// Most peers remembered per session (the self user is kept apart and
/// never evicted). Least recently seen peers go first.
pub const PEER_CACHE_LIMIT: usize = 2000;

/// Version of [`BackendState`].
pub const BACKEND_STATE_VERSION: u32 = 1;

/// What the grammers backend keeps in [`SessionData::backend_state`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendState {
    pub v: u32,
    #[serde(default)]
    pub updates: Option<StoredUpdates>,
    #[serde(default)]
    pub peers: Vec<StoredPeer>,
}

/// The update state (pts, qts, date, seq, channel pts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUpdates {
    pub pts: i32,
    pub qts: i32,
    pub date: i32,
    pub seq: i32,
    #[serde(default)]
    pub channels: Vec<(i64, i32)>,
}

/// A cached peer: what Telegram needs to address it (the access hash) and
/// what tgvisor shows about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPeer {
    /// Bot API dialog id: users positive, small groups `-id`, channels `-100…`.
    pub id: i64,
    #[serde(default)]
    pub hash: Option<i64>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub bot: Option<bool>,
    /// For channels: a megagroup (shown as a group) rather than a broadcast.
    #[serde(default)]
    pub megagroup: Option<bool>,
}

impl StoredPeer {
    pub fn peer_id(&self) -> Option<PeerId> {
        PeerId::from_bot_api_dialog_id(self.id)
    }

    /// The kind tgvisor reports, given the signed-in user's id.
    pub fn kind(&self, self_id: Option<i64>) -> Option<OurPeerKind> {
        Some(match self.peer_id()?.kind() {
            PeerKind::User if Some(self.id) == self_id => OurPeerKind::SelfChat,
            PeerKind::User => OurPeerKind::User,
            PeerKind::Chat => OurPeerKind::Group,
            PeerKind::Channel if self.megagroup == Some(true) => OurPeerKind::Group,
            PeerKind::Channel => OurPeerKind::Channel,
        })
    }

    /// Merges newer knowledge in, keeping what the newer one lacks.
    fn merge(&mut self, newer: StoredPeer) {
        self.hash = newer.hash.or(self.hash);
        if !newer.title.is_empty() {
            self.title = newer.title;
        }
        self.username = newer.username.or(self.username.take());
        self.bot = newer.bot.or(self.bot);
        self.megagroup = newer.megagroup.or(self.megagroup);
    }

    fn info(&self) -> Option<PeerInfo> {
        let id = self.peer_id()?;
        let bare = id.bare_id()?;
        Some(match id.kind() {
            PeerKind::User => PeerInfo::User {
                id: bare,
                auth: self.hash.map(PeerAuth::from_hash),
                bot: self.bot,
                is_self: None,
            },
            PeerKind::Chat => PeerInfo::Chat { id: bare },
            PeerKind::Channel => PeerInfo::Channel {
                id: bare,
                auth: self.hash.map(PeerAuth::from_hash),
                kind: self.megagroup.map(|m| {
                    if m {
                        ChannelKind::Megagroup
                    } else {
                        ChannelKind::Broadcast
                    }
                }),
            },
        })
    }

    fn from_info(info: &PeerInfo) -> Option<Self> {
        let id = info.id().bot_api_dialog_id()?;
        let (hash, bot, megagroup) = match info {
            PeerInfo::User { auth, bot, .. } => (auth.map(PeerAuth::hash), *bot, None),
            PeerInfo::Chat { .. } => (None, None, None),
            PeerInfo::Channel { auth, kind, .. } => (
                auth.map(PeerAuth::hash),
                None,
                kind.map(|k| !matches!(k, ChannelKind::Broadcast)),
            ),
        };
        Some(Self {
            id,
            hash,
            title: String::new(),
            username: None,
            bot,
            megagroup,
        })
    }
}

/// A bounded map of peers; the least recently touched go first.
#[derive(Default)]
pub struct PeerCache {
    peers: HashMap<i64, (StoredPeer, u64)>,
    tick: u64,
}

impl PeerCache {
    pub fn get(&self, id: i64) -> Option<&StoredPeer> {
        self.peers.get(&id).map(|(p, _)| p)
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Inserts or merges; returns whether anything changed.
    pub fn upsert(&mut self, peer: StoredPeer) -> bool {
        self.tick += 1;
        let tick = self.tick;
        let changed = match self.peers.get_mut(&peer.id) {
            Some((old, t)) => {
                *t = tick;
                let before = old.clone();
                old.merge(peer);
                *old != before
            }
            None => {
                self.peers.insert(peer.id, (peer, tick));
                true
            }
        };
        if self.peers.len() > PEER_CACHE_LIMIT {
            self.evict();
        }
        changed
    }

    /// Drops the oldest tenth (so eviction is not paid on every insert).
    fn evict(&mut self) {
        let target = PEER_CACHE_LIMIT - PEER_CACHE_LIMIT / 10;
        let mut ticks: Vec<u64> = self.peers.values().map(|(_, t)| *t).collect();
        ticks.sort_unstable();
        let excess = self.peers.len().saturating_sub(target);
        if let Some(&cut) = ticks.get(excess.saturating_sub(1)) {
            self.peers.retain(|_, (_, t)| *t > cut);
        }
    }

    fn to_vec(&self) -> Vec<StoredPeer> {
        let mut all: Vec<_> = self.peers.values().collect();
        all.sort_by_key(|(_, t)| *t);
        all.into_iter().map(|(p, _)| p.clone()).collect()
    }
}

struct Inner {
    home_dc: i32,
    dcs: BTreeMap<i32, DcOption>,
    user_id: Option<i64>,
    self_hash: Option<i64>,
    /// Where a connection starts from (see the module docs).
    updates: UpdatesState,
    /// grammers' latest state once armed; never saved in the blob.
    live: Option<UpdatesState>,
    peers: PeerCache,
}

/// Generations: every change bumps `changed`; the writer publishes the
/// generation it last saved in `written`.
struct Gens {
    changed: u64,
}

/// The result of the writer's last save.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Written {
    generation: u64,
    failed: bool,
    /// Write attempts so far.
    attempts: u64,
}

/// The session grammers runs on.
pub struct TgSession {
    inner: Mutex<Inner>,
    gens: Mutex<Gens>,
    /// Generation the writer is asked to save (at least).
    request: watch::Sender<u64>,
    written: watch::Sender<Written>,
    armed: watch::Sender<bool>,
    /// See [`TgSession::without_self`].
    hide_self: AtomicBool,
}

impl fmt::Debug for TgSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("TgSession")
            .field("home_dc", &inner.home_dc)
            .field("dcs", &inner.dcs.keys().collect::<Vec<_>>())
            .field("user_id", &inner.user_id)
            .field("peers", &inner.peers.len())
            .finish_non_exhaustive()
    }
}

/// Why a flush did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlushError {
    #[error("the session store refused the write")]
    WriteFailed,
    #[error("the session writer is gone")]
    WriterGone,
    #[error("the session write timed out")]
    TimedOut,
}

fn v6_unspecified() -> SocketAddrV6 {
    SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0)
}

fn v4_unspecified() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)
}

impl TgSession {
    /// A session from stored data. Unknown or unreadable backend state is
    /// dropped (the update state is then fetched afresh).
    pub fn from_data(data: &SessionData) -> Arc<Self> {
        let mut dcs = BTreeMap::new();
        for dc in &data.dcs {
            let ipv4 = dc.ipv4.unwrap_or_else(v4_unspecified);
            let ipv6 = dc.ipv6.unwrap_or_else(|| {
                if dc.ipv4.is_some() {
                    SocketAddrV6::new(ipv4.ip().to_ipv6_mapped(), ipv4.port(), 0, 0)
                } else {
                    v6_unspecified()
                }
            });
            dcs.insert(
                dc.id,
                DcOption {
                    id: dc.id,
                    ipv4,
                    ipv6,
                    auth_key: dc.auth_key.as_ref().map(|k| *k.expose()),
                },
            );
        }
        let state = data
            .backend_state
            .clone()
            .and_then(|v| serde_json::from_value::<BackendState>(v).ok())
            .filter(|s| s.v == BACKEND_STATE_VERSION);
        if data.backend_state.is_some() && state.is_none() {
            tracing::warn!("ignoring unreadable grammers backend state in the session");
        }
        let state = state.unwrap_or_default();
        let mut peers = PeerCache::default();
        for p in state.peers {
            peers.upsert(p);
        }
        let updates = state
            .updates
            .map(|u| UpdatesState {
                pts: u.pts,
                qts: u.qts,
                date: u.date,
                seq: u.seq,
                channels: u
                    .channels
                    .into_iter()
                    .map(|(id, pts)| ChannelState { id, pts })
                    .collect(),
            })
            .unwrap_or_default();
        let self_hash = data
            .user_id
            .and_then(|id| peers.get(id))
            .and_then(|p| p.hash);
        Arc::new(Self {
            inner: Mutex::new(Inner {
                home_dc: data.home_dc,
                dcs,
                user_id: data.user_id,
                self_hash,
                updates,
                live: None,
                peers,
            }),
            gens: Mutex::new(Gens { changed: 0 }),
            request: watch::Sender::new(0),
            written: watch::Sender::new(Written::default()),
            armed: watch::Sender::new(false),
            hide_self: AtomicBool::new(false),
        })
    }

    /// A session for a new sign-in: Telegram's known DCs, no keys.
    pub fn fresh() -> Arc<Self> {
        let defaults = grammers_session::SessionData::default();
        let mut data = SessionData {
            version: crate::sessions::data::FORMAT_VERSION,
            home_dc: defaults.home_dc,
            dcs: Vec::new(),
            user_id: None,
            backend_state: None,
        };
        let mut options: Vec<_> = defaults.dc_options.into_values().collect();
        options.sort_by_key(|o| o.id);
        for o in options {
            data.dcs.push(DcEntry {
                id: o.id,
                ipv4: Some(o.ipv4),
                ipv6: Some(o.ipv6),
                auth_key: None,
            });
        }
        Self::from_data(&data)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) -> u64 {
        let mut g = self.gens.lock().unwrap_or_else(|p| p.into_inner());
        g.changed += 1;
        g.changed
    }

    fn generation(&self) -> u64 {
        self.gens.lock().unwrap_or_else(|p| p.into_inner()).changed
    }

    /// A durable change: ask the writer to save it.
    fn durable_change(&self) {
        let generation = self.bump();
        self.request.send_replace(generation);
    }

    /// A change of the start state (before arming): the arm's write saves it.
    fn state_change(&self) {
        self.bump();
    }

    /// Lets the writer save (see the module docs).
    pub fn arm(&self) {
        self.armed.send_replace(true);
        self.request.send_replace(self.generation());
    }

    /// The signed-in user, once known.
    pub fn user_id(&self) -> Option<i64> {
        self.lock().user_id
    }

    /// Records the signed-in user (and its access hash).
    pub fn set_self(&self, id: i64, hash: Option<i64>) {
        let changed = {
            let mut inner = self.lock();
            let changed = inner.user_id != Some(id) || (hash.is_some() && inner.self_hash != hash);
            inner.user_id = Some(id);
            inner.self_hash = hash.or(inner.self_hash);
            changed
        };
        if changed {
            self.durable_change();
        }
    }

    /// Caches peers tgvisor saw (with titles); saves when something changed.
    pub fn remember(&self, peers: impl IntoIterator<Item = StoredPeer>) {
        let mut changed = false;
        {
            let mut inner = self.lock();
            for p in peers {
                changed |= inner.peers.upsert(p);
            }
        }
        if changed {
            self.durable_change();
        }
    }

    /// A cached peer by its Bot API dialog id.
    pub fn cached_peer(&self, id: i64) -> Option<StoredPeer> {
        let inner = self.lock();
        if Some(id) == inner.user_id {
            let mut p = inner.peers.get(id).cloned().unwrap_or(StoredPeer {
                id,
                hash: None,
                title: String::new(),
                username: None,
                bot: Some(false),
                megagroup: None,
            });
            p.hash = p.hash.or(inner.self_hash);
            return Some(p);
        }
        inner.peers.get(id).cloned()
    }

    /// Whether an update state is known (grammers needs a non-zero pts to
    /// catch up from it).
    pub fn has_update_state(&self) -> bool {
        self.lock().updates.pts != 0
    }

    /// The state from `updates.getState`, for a session that had none.
    pub fn set_initial_update_state(&self, pts: i32, qts: i32, date: i32, seq: i32) {
        self.lock().updates = UpdatesState {
            pts,
            qts,
            date,
            seq,
            channels: Vec::new(),
        };
        self.state_change();
    }

    /// Runs `f` while `peer(PeerId::self_user())` answers `None`.
    ///
    /// grammers' update receiver asks that once, when it is created: with
    /// an empty message box (pts 0) and a known self user it would call
    /// `updates.getState` lazily on its first poll and skip, as already
    /// seen, everything that arrived since `connect` pinned the state.
    /// Without a self user it applies every update from the start, which is
    /// right: `connect` has just fetched (or loaded) the state.
    pub async fn without_self<T>(&self, f: impl Future<Output = T>) -> T {
        self.hide_self.store(true, Ordering::SeqCst);
        let out = f.await;
        self.hide_self.store(false, Ordering::SeqCst);
        out
    }

    /// Starts the updates from `state` (the account's stored one) rather
    /// than the blob's. Not a change to save: the state is stored already.
    pub fn resume_from(&self, state: &OurUpdateState) {
        self.lock().updates = super::convert::updates_state(state);
    }

    /// The state the updates start from.
    pub fn start_state(&self) -> OurUpdateState {
        super::convert::update_state(&self.lock().updates)
    }

    /// The state grammers last synced since [`TgSession::arm`].
    pub fn live_update_state(&self) -> Option<OurUpdateState> {
        self.lock().live.as_ref().map(super::convert::update_state)
    }

    /// The whole session as tgvisor stores it.
    pub fn snapshot(&self) -> SessionData {
        let inner = self.lock();
        let dcs = inner
            .dcs
            .values()
            .map(|o| DcEntry {
                id: o.id,
                ipv4: (!o.ipv4.ip().is_unspecified()).then_some(o.ipv4),
                // grammers fills in a v4-mapped address when it has no v6 one.
                ipv6: (!o.ipv6.ip().is_unspecified() && o.ipv6.ip().to_ipv4_mapped().is_none())
                    .then_some(o.ipv6),
                auth_key: o.auth_key.map(AuthKey::new),
            })
            .collect();
        let u = &inner.updates;
        let has_updates = u.pts != 0 || u.qts != 0 || u.date != 0 || !u.channels.is_empty();
        let mut peers = inner.peers.to_vec();
        if let Some(id) = inner.user_id
            && inner.self_hash.is_some()
            && !peers.iter().any(|p| p.id == id)
        {
            peers.push(StoredPeer {
                id,
                hash: inner.self_hash,
                title: String::new(),
                username: None,
                bot: Some(false),
                megagroup: None,
            });
        }
        let state = BackendState {
            v: BACKEND_STATE_VERSION,
            updates: has_updates.then(|| StoredUpdates {
                pts: u.pts,
                qts: u.qts,
                date: u.date,
                seq: u.seq,
                channels: u.channels.iter().map(|c| (c.id, c.pts)).collect(),
            }),
            peers,
        };
        SessionData {
            version: crate::sessions::data::FORMAT_VERSION,
            home_dc: inner.home_dc,
            dcs,
            user_id: inner.user_id,
            // Plain structs with string keys always serialize: `ok()` drops nothing.
            backend_state: serde_json::to_value(&state).ok(),
        }
    }

    /// Saves everything changed so far and waits for the write.
    pub async fn flush(&self, within: Duration) -> Result<(), FlushError> {
        let target = self.generation();
        let last = *self.written.borrow();
        if last.generation >= target && !last.failed {
            return Ok(());
        }
        let mut rx = self.written.subscribe();
        self.request.send_replace(target);
        // A write attempted after this request, covering the target.
        let wait = rx.wait_for(|w| w.attempts > last.attempts && w.generation >= target);
        match tokio::time::timeout(within, wait).await {
            Err(_) => Err(FlushError::TimedOut),
            Ok(Err(_)) => Err(FlushError::WriterGone),
            Ok(Ok(w)) if w.failed => Err(FlushError::WriteFailed),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Starts the writer task. It ends when the session is dropped.
    pub fn spawn_writer(
        self: &Arc<Self>,
        sink: Arc<dyn SessionSink>,
        tick: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let request = self.request.subscribe();
        let armed = self.armed.subscribe();
        tokio::spawn(writer(weak, request, armed, sink, tick))
    }
}

async fn writer(
    session: Weak<TgSession>,
    mut request: watch::Receiver<u64>,
    mut armed: watch::Receiver<bool>,
    sink: Arc<dyn SessionSink>,
    tick: Duration,
) {
    if armed.wait_for(|a| *a).await.is_err() {
        return;
    }
    let mut interval = tokio::time::interval(tick.max(Duration::from_millis(10)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = request.changed() => {
                if changed.is_err() {
                    return; // the session is gone
                }
            }
            _ = interval.tick() => {}
        }
        let Some(session) = session.upgrade() else {
            return;
        };
        let generation = session.generation();
        let last = *session.written.borrow();
        if generation == last.generation && !last.failed {
            continue;
        }
        let data = session.snapshot();
        // Do not hold the session while the store works.
        let written = session.written.clone();
        drop(session);
        let failed = match sink.save(&data).await {
            Ok(()) => false,
            Err(e) => {
                tracing::warn!(error = %e, "saving the Telegram session failed");
                true
            }
        };
        written.send_modify(|w| {
            *w = Written {
                generation,
                failed,
                attempts: w.attempts + 1,
            }
        });
    }
}

impl Session for TgSession {
    type Error = Infallible;

    fn home_dc_id(&self) -> Result<i32, Infallible> {
        Ok(self.lock().home_dc)
    }

    fn set_home_dc_id(&self, dc_id: i32) -> BoxFuture<'_, Result<(), Infallible>> {
        let changed = {
            let mut inner = self.lock();
            let changed = inner.home_dc != dc_id;
            inner.home_dc = dc_id;
            changed
        };
        if changed {
            self.durable_change();
        }
        Box::pin(async { Ok(()) })
    }

    fn dc_option(&self, dc_id: i32) -> Result<Option<DcOption>, Infallible> {
        Ok(self.lock().dcs.get(&dc_id).cloned())
    }

    fn set_dc_option(&self, dc_option: &DcOption) -> BoxFuture<'_, Result<(), Infallible>> {
        let changed = {
            let mut inner = self.lock();
            let changed = inner.dcs.get(&dc_option.id) != Some(dc_option);
            inner.dcs.insert(dc_option.id, dc_option.clone());
            changed
        };
        if changed {
            self.durable_change();
        }
        Box::pin(async { Ok(()) })
    }

    fn peer(&self, peer: PeerId) -> BoxFuture<'_, Result<Option<PeerInfo>, Infallible>> {
        let info = {
            let inner = self.lock();
            let is_self = peer == PeerId::self_user()
                || (inner.user_id.is_some() && peer.bot_api_dialog_id() == inner.user_id);
            if peer == PeerId::self_user() && self.hide_self.load(Ordering::SeqCst) {
                None
            } else if is_self {
                inner.user_id.map(|id| PeerInfo::User {
                    id,
                    auth: inner.self_hash.map(PeerAuth::from_hash),
                    bot: Some(false),
                    is_self: Some(true),
                })
            } else {
                peer.bot_api_dialog_id()
                    .and_then(|id| inner.peers.get(id))
                    .and_then(StoredPeer::info)
            }
        };
        Box::pin(async move { Ok(info) })
    }

    fn cache_peer(&self, peer: PeerInfo) -> BoxFuture<'_, Result<(), Infallible>> {
        if let PeerInfo::User {
            id,
            auth,
            is_self: Some(true),
            ..
        } = peer
        {
            self.set_self(id, auth.map(PeerAuth::hash));
        } else if let Some(p) = StoredPeer::from_info(&peer) {
            self.remember([p]);
        }
        Box::pin(async { Ok(()) })
    }

    fn updates_state(&self) -> BoxFuture<'_, Result<UpdatesState, Infallible>> {
        let state = self.lock().updates.clone();
        Box::pin(async move { Ok(state) })
    }

    /// Before [`TgSession::arm`] (a sign-in, a connect fetching the first
    /// state) this sets the state a connection starts from; after it,
    /// grammers' live state (see the module docs).
    fn set_update_state(&self, update: UpdateState) -> BoxFuture<'_, Result<(), Infallible>> {
        let armed = *self.armed.borrow();
        {
            let mut inner = self.lock();
            let inner = &mut *inner;
            let u = if armed {
                inner.live.get_or_insert_with(|| inner.updates.clone())
            } else {
                &mut inner.updates
            };
            match update {
                UpdateState::All(all) => *u = all,
                UpdateState::Primary { pts, date, seq } => {
                    u.pts = pts;
                    u.date = date;
                    u.seq = seq;
                }
                UpdateState::Secondary { qts } => u.qts = qts,
                UpdateState::Channel { id, pts } => {
                    u.channels.retain(|c| c.id != id);
                    u.channels.push(ChannelState { id, pts });
                }
            }
        }
        if !armed {
            self.state_change();
        }
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests;
