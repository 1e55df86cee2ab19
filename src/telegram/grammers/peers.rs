//! The peers a session remembers: [`StoredPeer`] (what Telegram needs to
//! address a peer, and what tgvisor shows about it) and the bounded
//! [`PeerCache`] that holds them, and a cached peer as the port's
//! [`Peer`].

use crate::telegram::{Peer, PeerKind as OurPeerKind, TgError};
use grammers_session::types::{ChannelKind, PeerAuth, PeerId, PeerInfo, PeerKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Most peers remembered per session (the self user is kept apart and
/// never evicted). Least recently seen peers go first.
pub const PEER_CACHE_LIMIT: usize = 2000;

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
    pub(super) fn merge(&mut self, newer: StoredPeer) {
        self.hash = newer.hash.or(self.hash);
        if !newer.title.is_empty() {
            self.title = newer.title;
        }
        self.username = newer.username.or(self.username.take());
        self.bot = newer.bot.or(self.bot);
        self.megagroup = newer.megagroup.or(self.megagroup);
    }

    pub(super) fn info(&self) -> Option<PeerInfo> {
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

    pub(super) fn from_info(info: &PeerInfo) -> Option<Self> {
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

    pub(super) fn to_vec(&self) -> Vec<StoredPeer> {
        let mut all: Vec<_> = self.peers.values().collect();
        all.sort_by_key(|(_, t)| *t);
        all.into_iter().map(|(p, _)| p.clone()).collect()
    }
}

/// A cached peer as the port's [`Peer`].
pub(super) fn to_port_peer(peer: &StoredPeer, self_id: Option<i64>) -> Result<Peer, TgError> {
    let kind = peer.kind(self_id).ok_or(TgError::PeerInvalid)?;
    Ok(Peer {
        id: peer.id,
        kind,
        title: if kind == OurPeerKind::SelfChat {
            "Saved Messages".to_owned()
        } else {
            peer.title.clone()
        },
        username: peer.username.clone(),
    })
}
