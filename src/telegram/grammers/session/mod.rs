//! tgvisor's [`grammers_session::Session`]: everything grammers asks for is
//! served from memory (`home_dc_id` and `dc_option` are synchronous and
//! called on every request), and every change is written through to the
//! account's [`SessionSink`](crate::telegram::SessionSink) as our own
//! [`SessionData`](crate::sessions::SessionData).
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

mod blob;
mod grammers_api;
mod writer;

pub use self::blob::{BACKEND_STATE_VERSION, BackendState, StoredUpdates};

use super::convert;
use super::peers::{PeerCache, StoredPeer};
use crate::telegram::UpdateState as OurUpdateState;
use grammers_session::types::{DcOption, UpdatesState};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::watch;

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

impl TgSession {
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
        self.lock().updates = convert::updates_state(state);
    }

    /// The state the updates start from.
    pub fn start_state(&self) -> OurUpdateState {
        convert::update_state(&self.lock().updates)
    }

    /// The state grammers last synced since [`TgSession::arm`].
    pub fn live_update_state(&self) -> Option<OurUpdateState> {
        self.lock().live.as_ref().map(convert::update_state)
    }
}

#[cfg(test)]
mod tests;
