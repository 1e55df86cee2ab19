//! The session as tgvisor stores it: the grammers backend's part of the
//! blob ([`BackendState`]), and the conversions between [`SessionData`]
//! and the in-memory [`TgSession`].

use super::{Gens, Inner, TgSession, Written};
use crate::sessions::{AuthKey, DcEntry, SessionData};
use crate::telegram::grammers::peers::{PeerCache, StoredPeer};
use grammers_session::types::{ChannelState, DcOption, UpdatesState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

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
}
