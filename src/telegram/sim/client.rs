//! One simulated connection: the [`Client`] calls a signed-in account makes
//! on the sim.

use super::state::State;
use super::world::SimWorld;
use crate::domain::validation::ChatRef;
use crate::sessions::SessionData;
use crate::telegram::{
    Client, Me, MediaInfo, MediaKind, Message, Peer, PeerKind, SendOptions, SessionSink, TgError,
    UploadedFile,
};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One sim connection.
pub(super) struct SimClient {
    world: SimWorld,
    conn_id: u64,
    user_id: i64,
    session: Mutex<SessionData>,
    sink: Arc<dyn SessionSink>,
}

impl SimClient {
    pub(super) fn new(
        world: SimWorld,
        conn_id: u64,
        user_id: i64,
        session: SessionData,
        sink: Arc<dyn SessionSink>,
    ) -> Self {
        Self {
            world,
            conn_id,
            user_id,
            session: Mutex::new(session),
            sink,
        }
    }

    fn check_banned(&self, state: &State) -> Result<(), TgError> {
        if state.users.get(&self.user_id).is_none_or(|u| u.banned) {
            return Err(TgError::Banned);
        }
        Ok(())
    }

    fn close(&self) {
        self.world.lock().close_connection(self.conn_id);
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
        let method = crate::telegram::part_method(total_parts);
        self.world.call(Some(self.conn_id), method, None).await?;
        let mut state = self.world.lock();
        if state.failing_parts > 0 {
            state.failing_parts -= 1;
            return Err(TgError::Network("part upload failed in the sim".into()));
        }
        if bytes.is_empty() || bytes.len() > crate::telegram::PART_SIZE {
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
