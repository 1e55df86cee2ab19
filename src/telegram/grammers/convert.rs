//! Pure conversions between grammers' raw TL types and tgvisor's port types,
//! error mapping and the retry policy. Nothing here does I/O.

use super::peers::StoredPeer;
use crate::telegram::{FloodScope, MediaInfo, MediaKind, Message, TgError, Update, UpdateState};
use chrono::{DateTime, Utc};
use grammers_client::InvocationError;
use grammers_client::sender::{RetryContext, RetryPolicy};
use grammers_mtproto::transport::Error as TransportError;
use grammers_session::types::{ChannelState, PeerId, UpdatesState};
use grammers_tl_types as tl;
use std::ops::ControlFlow;
use std::time::Duration;

/// How long to wait before the single retry of a request whose connection
/// failed. Long enough for the pool to notice the dead connection and open
/// a new one for the retry.
pub const IO_RETRY_DELAY: Duration = Duration::from_millis(250);

/// tgvisor's retry policy for the grammers sender pool.
///
/// grammers' default (`AutoSleep`) sleeps through any FLOOD_WAIT of up to
/// 60 s inside the call. tgvisor's rate limiter owns flood waits: it has to
/// see every one of them to pause the account (or the chat) and to report
/// it, and a call that silently sleeps a minute would also blow through the
/// request timeout. So RPC errors, flood waits included, are returned at
/// once.
///
/// An I/O error (the connection died with the request in flight) is retried
/// once, on a fresh connection. That stays exactly-once for sends: the retry
/// resends the same serialized body, so the same `random_id` that tgvisor
/// derived from its outbox id; if the first attempt reached Telegram,
/// Telegram recognises the random id and does not create a second message.
/// Anything else (a second I/O error, a dropped request, a transport error)
/// is returned, and the outbox retries later with the same random id.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFloodSleep;

impl RetryPolicy for NoFloodSleep {
    fn should_retry(&self, ctx: &RetryContext) -> ControlFlow<(), Duration> {
        match ctx.error {
            InvocationError::Io(_) if ctx.fail_count.get() == 1 => {
                ControlFlow::Continue(IO_RETRY_DELAY)
            }
            _ => ControlFlow::Break(()),
        }
    }
}

/// Maps a grammers error. `chat` fills in the chat of per-chat waits.
pub fn map_error(err: &InvocationError, chat: Option<i64>) -> TgError {
    match err {
        InvocationError::Rpc(rpc) => {
            let mapped = TgError::from_rpc(rpc.code, &rpc.name, rpc.value);
            match mapped {
                TgError::FloodWait {
                    seconds,
                    scope: FloodScope::Chat { .. },
                } => TgError::FloodWait {
                    seconds,
                    scope: chat.map_or(FloodScope::Account, |chat_id| FloodScope::Chat { chat_id }),
                },
                other => other,
            }
        }
        InvocationError::Io(e) => TgError::Network(format!("connection failed ({})", e.kind())),
        InvocationError::Dropped(_) => TgError::Network("the request was dropped".into()),
        InvocationError::Transport(TransportError::BadStatus { status: 404 }) => {
            // Telegram does not know the auth key.
            TgError::Unauthorized
        }
        InvocationError::Transport(_) => TgError::Network("transport error".into()),
        InvocationError::Deserialize(_) => TgError::Other {
            code: 0,
            name: "BAD_RESPONSE".into(),
        },
        InvocationError::InvalidDc => TgError::Other {
            code: 0,
            name: "INVALID_DC".into(),
        },
        InvocationError::Authentication(_) => {
            TgError::Network("the key exchange with Telegram failed".into())
        }
        InvocationError::Session(_) => TgError::Other {
            code: 0,
            name: "SESSION_STORAGE".into(),
        },
    }
}

/// Unix seconds to a timestamp.
pub fn timestamp(secs: i32) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(secs), 0).unwrap_or_default()
}

/// A TL peer as a Bot API dialog id (users positive, groups `-id`,
/// channels `-100…`).
pub fn dialog_id(peer: &tl::enums::Peer) -> Option<i64> {
    let id = match peer {
        tl::enums::Peer::User(u) => PeerId::user(u.user_id),
        tl::enums::Peer::Chat(c) => PeerId::chat(c.chat_id),
        tl::enums::Peer::Channel(c) => PeerId::channel(c.channel_id),
    };
    id.and_then(PeerId::bot_api_dialog_id)
}

/// A channel id as a dialog id.
pub fn channel_dialog_id(channel_id: i64) -> Option<i64> {
    PeerId::channel(channel_id).and_then(PeerId::bot_api_dialog_id)
}

/// What tgvisor reports about a message's media.
pub fn media_info(media: &tl::enums::MessageMedia) -> Option<MediaInfo> {
    match media {
        tl::enums::MessageMedia::Photo(p) => {
            let size = match &p.photo {
                Some(tl::enums::Photo::Photo(photo)) => photo
                    .sizes
                    .iter()
                    .filter_map(|s| match s {
                        tl::enums::PhotoSize::Size(s) => Some(s.size.max(0) as u64),
                        tl::enums::PhotoSize::Progressive(s) => {
                            s.sizes.iter().copied().max().map(|n| n.max(0) as u64)
                        }
                        _ => None,
                    })
                    .max()
                    .unwrap_or(0),
                _ => 0,
            };
            Some(MediaInfo {
                kind: MediaKind::Photo,
                name: None,
                size,
            })
        }
        tl::enums::MessageMedia::Document(d) => {
            let (name, size) = match &d.document {
                Some(tl::enums::Document::Document(doc)) => (
                    doc.attributes.iter().find_map(|a| match a {
                        tl::enums::DocumentAttribute::Filename(f) => Some(f.file_name.clone()),
                        _ => None,
                    }),
                    doc.size.max(0) as u64,
                ),
                _ => (None, 0),
            };
            Some(MediaInfo {
                kind: MediaKind::Document,
                name,
                size,
            })
        }
        _ => None,
    }
}

/// A TL message as tgvisor's [`Message`]; `None` for empty and service
/// messages (tgvisor passes on what people wrote).
pub fn message(raw: &tl::enums::Message, self_id: Option<i64>) -> Option<Message> {
    let tl::enums::Message::Message(m) = raw else {
        return None;
    };
    let chat_id = dialog_id(&m.peer_id)?;
    let sender_id = match &m.from_id {
        Some(from) => dialog_id(from),
        None if m.out => self_id,
        // A private chat: the other side wrote it.
        None if matches!(m.peer_id, tl::enums::Peer::User(_)) => Some(chat_id),
        None => None,
    };
    let reply_to = match &m.reply_to {
        Some(tl::enums::MessageReplyHeader::Header(h)) => h.reply_to_msg_id,
        _ => None,
    };
    Some(Message {
        id: m.id,
        chat_id,
        sender_id,
        outgoing: m.out,
        text: m.message.clone(),
        date: timestamp(m.date),
        reply_to,
        edit_date: m.edit_date.map(timestamp),
        media: m.media.as_ref().and_then(media_info),
    })
}

/// A raw update as tgvisor's [`Update`], if it is one tgvisor passes on.
pub fn update(raw: &tl::enums::Update, self_id: Option<i64>) -> Option<Update> {
    use tl::enums::Update as U;
    match raw {
        U::NewMessage(u) => message(&u.message, self_id).map(Update::NewMessage),
        U::NewChannelMessage(u) => message(&u.message, self_id).map(Update::NewMessage),
        U::EditMessage(u) => message(&u.message, self_id).map(Update::MessageEdited),
        U::EditChannelMessage(u) => message(&u.message, self_id).map(Update::MessageEdited),
        U::DeleteMessages(u) => Some(Update::MessagesDeleted {
            chat_id: None,
            ids: u.messages.clone(),
        }),
        U::DeleteChannelMessages(u) => Some(Update::MessagesDeleted {
            chat_id: channel_dialog_id(u.channel_id),
            ids: u.messages.clone(),
        }),
        _ => None,
    }
}

/// Peers worth caching from a response's users.
pub fn users_to_peers<'a>(
    users: impl IntoIterator<Item = &'a tl::enums::User>,
) -> impl Iterator<Item = StoredPeer> {
    users.into_iter().filter_map(|u| match u {
        tl::enums::User::User(u) if !u.min => Some(StoredPeer {
            id: PeerId::user(u.id)?.bot_api_dialog_id()?,
            hash: u.access_hash,
            title: user_title(u),
            username: u.username.clone(),
            bot: Some(u.bot),
            megagroup: None,
        }),
        _ => None,
    })
}

/// Peers worth caching from a response's chats.
pub fn chats_to_peers<'a>(
    chats: impl IntoIterator<Item = &'a tl::enums::Chat>,
) -> impl Iterator<Item = StoredPeer> {
    chats.into_iter().filter_map(|c| match c {
        tl::enums::Chat::Chat(c) => Some(StoredPeer {
            id: PeerId::chat(c.id)?.bot_api_dialog_id()?,
            hash: None,
            title: c.title.clone(),
            username: None,
            bot: None,
            megagroup: None,
        }),
        tl::enums::Chat::Channel(c) if !c.min => Some(StoredPeer {
            id: PeerId::channel(c.id)?.bot_api_dialog_id()?,
            hash: c.access_hash,
            title: c.title.clone(),
            username: c.username.clone(),
            bot: None,
            megagroup: Some(c.megagroup || c.gigagroup),
        }),
        _ => None,
    })
}

/// What tgvisor shows as a user's name.
pub fn user_title(u: &tl::types::User) -> String {
    match (&u.first_name, &u.last_name) {
        (Some(f), Some(l)) if !l.is_empty() => format!("{f} {l}"),
        (Some(f), _) => f.clone(),
        (None, Some(l)) => l.clone(),
        (None, None) => String::new(),
    }
}

/// The input peer for a cached peer.
pub fn input_peer(peer: &StoredPeer, self_id: Option<i64>) -> Option<tl::enums::InputPeer> {
    if Some(peer.id) == self_id {
        return Some(tl::enums::InputPeer::PeerSelf);
    }
    let id = peer.peer_id()?;
    let bare = id.bare_id()?;
    Some(match id.kind() {
        grammers_session::types::PeerKind::User => {
            tl::enums::InputPeer::User(tl::types::InputPeerUser {
                user_id: bare,
                access_hash: peer.hash.unwrap_or(0),
            })
        }
        grammers_session::types::PeerKind::Chat => {
            tl::enums::InputPeer::Chat(tl::types::InputPeerChat { chat_id: bare })
        }
        grammers_session::types::PeerKind::Channel => {
            tl::enums::InputPeer::Channel(tl::types::InputPeerChannel {
                channel_id: bare,
                access_hash: peer.hash?,
            })
        }
    })
}

/// Finds the message a send created in the send's answer.
///
/// `short` builds the message from what was sent when Telegram answers
/// with the short form (`updateShortSentMessage`, private chats).
pub fn sent_message(
    updates: &tl::enums::Updates,
    random_id: i64,
    self_id: Option<i64>,
    short: impl FnOnce(&tl::types::UpdateShortSentMessage) -> Message,
) -> Option<Message> {
    let list: &[tl::enums::Update] = match updates {
        tl::enums::Updates::UpdateShortSentMessage(s) => return Some(short(s)),
        tl::enums::Updates::Updates(u) => &u.updates,
        tl::enums::Updates::Combined(u) => &u.updates,
        tl::enums::Updates::UpdateShort(u) => std::slice::from_ref(&u.update),
        _ => return None,
    };
    let id = list.iter().find_map(|u| match u {
        tl::enums::Update::MessageId(m) if m.random_id == random_id => Some(m.id),
        _ => None,
    });
    let mut messages = list.iter().filter_map(|u| match u {
        tl::enums::Update::NewMessage(n) => message(&n.message, self_id),
        tl::enums::Update::NewChannelMessage(n) => message(&n.message, self_id),
        _ => None,
    });
    match id {
        Some(id) => messages.find(|m| m.id == id),
        None => messages.next(),
    }
}

/// Users and chats carried by an `Updates`.
pub fn updates_peers(updates: &tl::enums::Updates) -> (&[tl::enums::User], &[tl::enums::Chat]) {
    match updates {
        tl::enums::Updates::Updates(u) => (&u.users, &u.chats),
        tl::enums::Updates::Combined(u) => (&u.users, &u.chats),
        _ => (&[], &[]),
    }
}

/// The port's update state as grammers keeps it.
pub fn updates_state(state: &UpdateState) -> UpdatesState {
    UpdatesState {
        pts: state.pts,
        qts: state.qts,
        date: state.date,
        seq: state.seq,
        channels: state
            .channels
            .iter()
            .map(|&(id, pts)| ChannelState { id, pts })
            .collect(),
    }
}

/// grammers' update state as the port's.
pub fn update_state(state: &UpdatesState) -> UpdateState {
    UpdateState {
        pts: state.pts,
        qts: state.qts,
        date: state.date,
        seq: state.seq,
        channels: state.channels.iter().map(|c| (c.id, c.pts)).collect(),
    }
}

#[cfg(test)]
mod tests;
