//! [`Session`] for [`TgSession`]: what grammers asks of its session,
//! answered from memory, and what it tells the session to remember.

use super::TgSession;
use crate::telegram::grammers::peers::StoredPeer;
use grammers_session::types::{
    ChannelState, DcOption, PeerAuth, PeerId, PeerInfo, UpdateState, UpdatesState,
};
use grammers_session::{BoxFuture, Session};
use std::convert::Infallible;
use std::sync::atomic::Ordering;

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
