//! One signed-in grammers connection: the [`Client`] calls, each under
//! the request timeout with its errors mapped to [`TgError`].

use super::convert::{self, map_error};
use super::peers::{StoredPeer, to_port_peer};
use super::pool::Pool;
use super::requests;
use super::session::TgSession;
use crate::domain::validation::ChatRef;
use crate::telegram::{
    Client, Me, MediaInfo, MediaKind, Message, Peer, PeerKind, SendOptions, TgError, UploadedFile,
};
use async_trait::async_trait;
use grammers_client::Client as GClient;
use grammers_client::sender::SenderPoolFatHandle;
use grammers_tl_types as tl;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How long a disconnect waits for the final session write.
const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// One signed-in grammers connection.
pub struct GrammersClient {
    client: GClient,
    handle: SenderPoolFatHandle,
    session: Arc<TgSession>,
    timeout: Duration,
    dead: Arc<watch::Sender<Option<TgError>>>,
    updates_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for GrammersClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrammersClient")
            .field("session", &self.session)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl GrammersClient {
    /// A client over a started pool; `writer` is the session writer task.
    pub(super) fn new(
        pool: &Pool,
        session: Arc<TgSession>,
        timeout: Duration,
        writer: tokio::task::JoinHandle<()>,
    ) -> Self {
        Self {
            client: pool.client.clone(),
            handle: pool.handle.clone(),
            session,
            timeout,
            dead: pool.dead_tx.clone(),
            updates_task: Mutex::new(None),
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Hands over the task that pumps the updates (stopped on disconnect).
    pub(super) fn set_updates_task(&self, task: tokio::task::JoinHandle<()>) {
        *self.updates_task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    }

    /// Invokes `request` under the timeout, mapping errors. `chat` fills in
    /// per-chat flood waits. Session-fatal errors also close the connection.
    pub(super) async fn call<R: tl::RemoteCall>(
        &self,
        request: &R,
        chat: Option<i64>,
    ) -> Result<R::Return, TgError> {
        let result = tokio::time::timeout(self.timeout, self.client.invoke(request)).await;
        let err = match result {
            Err(_) => TgError::Timeout(self.timeout),
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => map_error(&e, chat),
        };
        if err.is_session_fatal() {
            let reason = err.clone();
            self.dead.send_if_modified(|r| {
                if r.is_none() {
                    *r = Some(reason);
                    true
                } else {
                    false
                }
            });
        }
        Err(err)
    }

    pub(super) fn shutdown_pool(&self) {
        self.handle.quit();
        if let Some(t) = self
            .updates_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            t.abort();
        }
    }

    fn self_id(&self) -> Option<i64> {
        self.session.user_id()
    }

    fn input_peer(&self, chat: &Peer) -> Result<tl::enums::InputPeer, TgError> {
        let self_id = self.self_id();
        if chat.kind == PeerKind::SelfChat || Some(chat.id) == self_id {
            return Ok(tl::enums::InputPeer::PeerSelf);
        }
        let cached = self
            .session
            .cached_peer(chat.id)
            .ok_or(TgError::PeerInvalid)?;
        convert::input_peer(&cached, self_id).ok_or(TgError::PeerInvalid)
    }

    /// Turns a send's answer into the sent message.
    fn sent(
        &self,
        updates: &tl::enums::Updates,
        chat: &Peer,
        text: &str,
        opts: &SendOptions,
        media: Option<MediaInfo>,
    ) -> Result<Message, TgError> {
        let (users, chats) = convert::updates_peers(updates);
        self.session
            .remember(convert::users_to_peers(users).chain(convert::chats_to_peers(chats)));
        let self_id = self.self_id();
        convert::sent_message(updates, opts.random_id, self_id, |s| Message {
            id: s.id,
            chat_id: chat.id,
            sender_id: self_id,
            outgoing: true,
            text: text.to_owned(),
            date: convert::timestamp(s.date),
            reply_to: opts.reply_to,
            edit_date: None,
            media: s
                .media
                .as_ref()
                .and_then(convert::media_info)
                .or(media.clone()),
        })
        .map(|mut m| {
            if m.media.is_none() {
                m.media = media;
            }
            m
        })
        .ok_or(TgError::Other {
            code: 0,
            name: "SENT_MESSAGE_NOT_FOUND".into(),
        })
    }
}

#[async_trait]
impl Client for GrammersClient {
    async fn get_me(&self) -> Result<Me, TgError> {
        let users = self
            .call(
                &tl::functions::users::GetUsers {
                    id: vec![tl::enums::InputUser::UserSelf],
                },
                None,
            )
            .await?;
        let Some(tl::enums::User::User(u)) = users.into_iter().next() else {
            return Err(TgError::Unauthorized);
        };
        self.session.set_self(u.id, u.access_hash);
        self.session.remember(convert::users_to_peers(
            [tl::enums::User::User(u.clone())].iter(),
        ));
        Ok(Me {
            id: u.id,
            username: u.username.clone(),
            first_name: u.first_name.clone().unwrap_or_default(),
            premium: u.premium,
        })
    }

    async fn resolve(&self, chat: &ChatRef) -> Result<Peer, TgError> {
        let self_id = self.self_id();
        match chat {
            ChatRef::Me => Ok(Peer {
                id: match self_id {
                    Some(id) => id,
                    None => self.get_me().await?.id,
                },
                kind: PeerKind::SelfChat,
                title: "Saved Messages".to_owned(),
                username: None,
            }),
            ChatRef::Username(name) => {
                let tl::enums::contacts::ResolvedPeer::Peer(resolved) = self
                    .call(
                        &tl::functions::contacts::ResolveUsername {
                            username: name.clone(),
                            referer: None,
                        },
                        None,
                    )
                    .await?;
                let peers: Vec<StoredPeer> = convert::users_to_peers(&resolved.users)
                    .chain(convert::chats_to_peers(&resolved.chats))
                    .collect();
                self.session.remember(peers.iter().cloned());
                let id = convert::dialog_id(&resolved.peer).ok_or(TgError::PeerInvalid)?;
                let peer = peers
                    .into_iter()
                    .find(|p| p.id == id)
                    .ok_or(TgError::PeerInvalid)?;
                to_port_peer(&peer, self_id)
            }
            ChatRef::Id(id) => {
                if Some(*id) == self_id {
                    return Box::pin(self.resolve(&ChatRef::Me)).await;
                }
                let peer = self.session.cached_peer(*id).ok_or(TgError::PeerInvalid)?;
                to_port_peer(&peer, self_id)
            }
        }
    }

    async fn send_text(
        &self,
        chat: &Peer,
        text: &str,
        opts: &SendOptions,
    ) -> Result<Message, TgError> {
        let peer = self.input_peer(chat)?;
        let request = requests::send_message(peer, text, opts);
        let updates = self.call(&request, Some(chat.id)).await?;
        self.sent(&updates, chat, text, opts, None)
    }

    async fn history(
        &self,
        chat: &Peer,
        limit: u32,
        before: Option<i32>,
    ) -> Result<Vec<Message>, TgError> {
        let peer = self.input_peer(chat)?;
        let limit = limit.clamp(1, 100) as i32;
        let answer = self
            .call(
                &tl::functions::messages::GetHistory {
                    peer,
                    // Messages older than offset_id, newest first.
                    offset_id: before.unwrap_or(0),
                    offset_date: 0,
                    add_offset: 0,
                    limit,
                    max_id: 0,
                    min_id: 0,
                    hash: 0,
                },
                Some(chat.id),
            )
            .await?;
        let (messages, users, chats) = match answer {
            tl::enums::messages::Messages::Messages(m) => (m.messages, m.users, m.chats),
            tl::enums::messages::Messages::Slice(m) => (m.messages, m.users, m.chats),
            tl::enums::messages::Messages::ChannelMessages(m) => (m.messages, m.users, m.chats),
            tl::enums::messages::Messages::NotModified(_) => (Vec::new(), Vec::new(), Vec::new()),
        };
        self.session
            .remember(convert::users_to_peers(&users).chain(convert::chats_to_peers(&chats)));
        let self_id = self.self_id();
        Ok(messages
            .iter()
            .filter_map(|m| convert::message(m, self_id))
            .take(limit as usize)
            .collect())
    }

    async fn save_file_part(
        &self,
        file_id: i64,
        part: u32,
        total_parts: Option<u32>,
        bytes: &[u8],
    ) -> Result<(), TgError> {
        let file_part =
            i32::try_from(part).map_err(|_| TgError::BadRequest("FILE_PART_INVALID".into()))?;
        let ok = match total_parts {
            Some(total) => {
                let file_total_parts = i32::try_from(total)
                    .map_err(|_| TgError::BadRequest("FILE_PARTS_INVALID".into()))?;
                self.call(
                    &tl::functions::upload::SaveBigFilePart {
                        file_id,
                        file_part,
                        file_total_parts,
                        bytes: bytes.to_vec(),
                    },
                    None,
                )
                .await?
            }
            None => {
                self.call(
                    &tl::functions::upload::SaveFilePart {
                        file_id,
                        file_part,
                        bytes: bytes.to_vec(),
                    },
                    None,
                )
                .await?
            }
        };
        if ok {
            Ok(())
        } else {
            Err(TgError::BadRequest("FILE_PART_INVALID".into()))
        }
    }

    async fn send_media(
        &self,
        chat: &Peer,
        file: &UploadedFile,
        kind: MediaKind,
        caption: &str,
        opts: &SendOptions,
    ) -> Result<Message, TgError> {
        let peer = self.input_peer(chat)?;
        let media = requests::input_media(file, kind)?;
        let request = requests::send_media(peer, media, caption, opts);
        let updates = self.call(&request, Some(chat.id)).await?;
        let fallback = MediaInfo {
            kind,
            name: Some(file.name.clone()),
            size: file.size,
        };
        self.sent(&updates, chat, caption, opts, Some(fallback))
    }

    async fn ping(&self) -> Result<Duration, TgError> {
        let started = tokio::time::Instant::now();
        let ping_id = rand::random::<i64>();
        let tl::enums::Pong::Pong(pong) = self.call(&tl::functions::Ping { ping_id }, None).await?;
        if pong.ping_id != ping_id {
            return Err(TgError::Network("pong for another ping".into()));
        }
        Ok(started.elapsed())
    }

    async fn sync_state(&self) -> Result<(), TgError> {
        self.session
            .flush(self.timeout.max(FINAL_FLUSH_TIMEOUT))
            .await
            .map_err(|e| TgError::Other {
                code: 0,
                name: format!("session write failed: {e}"),
            })
    }

    async fn disconnect(&self) {
        // Stop reading updates first so the state saved is final.
        let task = self
            .updates_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
        if let Err(e) = self.session.flush(FINAL_FLUSH_TIMEOUT).await {
            tracing::warn!(error = %e, "the final session write failed");
        }
        self.handle.quit();
        if let Some(w) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            w.abort();
        }
    }
}

impl Drop for GrammersClient {
    fn drop(&mut self) {
        self.shutdown_pool();
    }
}
