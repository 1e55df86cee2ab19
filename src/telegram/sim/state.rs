//! The simulated Telegram's state: users, auth keys, open connections,
//! dialogs, uploads, injected faults and call counts, and the operations
//! on it that the world, the sign-in and the connections share.

use super::conventions::{ECHO_USER_ID, dc_addr};
use super::flood::FloodRule;
use crate::sessions::{AuthKey, DcEntry, SessionData};
use crate::telegram::{Incoming, Me, MediaInfo, Message, TgError, Update};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(Clone, Debug)]
pub(super) struct SimUser {
    pub(super) id: i64,
    pub(super) username: Option<String>,
    pub(super) first_name: String,
    pub(super) banned: bool,
}

pub(super) struct KeyEntry {
    pub(super) user_id: i64,
    pub(super) revoked: bool,
    /// Open connections using the key.
    pub(super) connections: usize,
}

pub(super) struct ConnEntry {
    pub(super) user_id: i64,
    pub(super) key: Vec<u8>,
    pub(super) kill: Option<oneshot::Sender<TgError>>,
    pub(super) updates: mpsc::Sender<Incoming>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) next_user_id: i64,
    pub(super) next_conn_id: u64,
    pub(super) latency: Duration,
    pub(super) users: HashMap<i64, SimUser>,
    pub(super) by_phone: HashMap<String, i64>,
    pub(super) keys: HashMap<Vec<u8>, KeyEntry>,
    pub(super) conns: HashMap<u64, ConnEntry>,
    /// (user, peer) → messages, oldest first.
    pub(super) dialogs: HashMap<(i64, i64), Vec<Message>>,
    pub(super) next_msg_id: HashMap<i64, i32>,
    /// (user, random_id) → the message it created.
    pub(super) random_ids: HashMap<(i64, i64), Message>,
    pub(super) floods: Vec<FloodRule>,
    pub(super) failing_calls: u32,
    pub(super) failing_parts: u32,
    /// (user, file id) → part → size.
    pub(super) uploads: HashMap<(i64, i64), BTreeMap<u32, usize>>,
    /// Calls made, by method (for tests and metrics checks).
    pub(super) calls: BTreeMap<String, u64>,
    /// Calls under way, and the most at once, by method.
    pub(super) in_flight: HashMap<String, u32>,
    pub(super) most_in_flight: HashMap<String, u32>,
    /// Accept auth keys this world never issued (see
    /// [`SimWorld::adopt_unknown_keys`](super::SimWorld::adopt_unknown_keys)).
    pub(super) adopt_unknown_keys: bool,
}

impl State {
    pub(super) fn sign_up(&mut self, e164: &str) -> i64 {
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

    pub(super) fn new_session(&mut self, user_id: i64, dc: i32) -> SessionData {
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

    pub(super) fn me(&self, user_id: i64) -> Me {
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
    pub(super) fn record(
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
    pub(super) fn incoming(&mut self, to: i64, from: i64, text: &str) -> Message {
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
    pub(super) fn deliver(&mut self, from: i64, to: i64, text: &str) {
        if to == from {
            return; // Saved Messages
        }
        if to == ECHO_USER_ID {
            self.incoming(from, ECHO_USER_ID, text);
        } else if self.users.contains_key(&to) {
            self.incoming(to, from, text);
        }
    }
    /// Opens a connection on `key`: checks the key (adopting an unknown one
    /// if the world is told to) and its user, and registers the connection.
    /// Returns the connection's id and the signed-in user.
    pub(super) fn open_connection(
        &mut self,
        key: Vec<u8>,
        session_user: Option<i64>,
        kill: oneshot::Sender<TgError>,
        updates: mpsc::Sender<Incoming>,
    ) -> Result<(u64, i64), TgError> {
        if self.adopt_unknown_keys && !self.keys.contains_key(&key) {
            self.adopt(&key, session_user);
        }
        let entry = self.keys.get_mut(&key).ok_or(TgError::Unauthorized)?;
        if entry.revoked {
            return Err(TgError::Revoked);
        }
        if entry.connections > 0 {
            return Err(TgError::AuthKeyDuplicated);
        }
        let user_id = entry.user_id;
        if self.users.get(&user_id).is_none_or(|u| u.banned) {
            return Err(TgError::Banned);
        }
        if let Some(entry) = self.keys.get_mut(&key) {
            entry.connections += 1;
        }
        self.next_conn_id += 1;
        let id = self.next_conn_id;
        self.conns.insert(
            id,
            ConnEntry {
                user_id,
                key,
                kill: Some(kill),
                updates,
            },
        );
        Ok((id, user_id))
    }

    /// Forgets a closed connection and frees its key for the next one.
    pub(super) fn close_connection(&mut self, conn_id: u64) {
        if let Some(conn) = self.conns.remove(&conn_id)
            && let Some(key) = self.keys.get_mut(&conn.key)
        {
            key.connections = key.connections.saturating_sub(1);
        }
    }
}
