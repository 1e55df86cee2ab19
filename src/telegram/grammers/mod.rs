//! The real Telegram backend, on grammers 0.11.
//!
//! - [`GrammersBackend::connect`] builds a grammers `SenderPool` over
//!   tgvisor's own session ([`session::TgSession`], written through to the
//!   [`SessionSink`]), runs the pool's runner in a task whose end (quit,
//!   error or panic) resolves [`Connection::closed`], verifies the
//!   authorization with a first `users.getUsers(self)`, and feeds the update
//!   stream into [`Connection::updates`].
//! - Updates are handed on a batch at a time, each batch's last with the
//!   state after it (see [`updates`]).
//! - Every call runs under the request timeout (grammers has none) and its
//!   errors are mapped to [`TgError`]. The pool's retry policy
//!   ([`convert::NoFloodSleep`]) returns flood waits at once.
//! - [`GrammersBackend::request_code`] starts a sign-in on a fresh session
//!   (grammers performs the key exchange) and keeps that client alive in
//!   the returned [`PendingCode`].
//!
//! Nothing here logs auth keys, phone numbers, codes or passwords.

pub mod convert;
mod login;
pub mod peers;
pub mod session;
mod updates;

use self::convert::{NoFloodSleep, map_error};
use self::peers::StoredPeer;
use self::session::TgSession;
use super::{
    Backend, Client, Connection, Incoming, Me, MediaInfo, MediaKind, Message, Peer, PeerKind,
    PendingCode, SendOptions, SessionSink, TgError, UpdateState, UploadedFile,
};
use crate::config::TelegramSettings;
use crate::domain::validation::{ChatRef, PhoneNumber};
use crate::sessions::SessionData;
use async_trait::async_trait;
use futures_util::FutureExt;
use grammers_client::Client as GClient;
use grammers_client::sender::{
    ConnectionParams, SenderPool, SenderPoolFatHandle, UpdatesConfiguration,
};
use grammers_mtsender::UpdatesReceiver;
use grammers_tl_types as tl;
use secrecy::SecretString;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Capacity of a connection's update channel (tgvisor's side).
const UPDATES_CAPACITY: usize = 1024;
/// Capacity of grammers' internal channel between the network and the
/// update stream: when full, grammers drops updates (they come back through
/// getDifference, but only after a gap is noticed), so keep it roomy.
const POOL_UPDATES_CAPACITY: usize = 2048;
/// How long a disconnect waits for the final session write.
const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the session writer tries a failed write again.
const SESSION_WRITE_RETRY: Duration = Duration::from_secs(5);

/// The grammers [`Backend`].
pub struct GrammersBackend {
    api_id: i32,
    api_hash: Option<SecretString>,
    request_timeout: Duration,
}

impl std::fmt::Debug for GrammersBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrammersBackend")
            .field("api_id", &self.api_id)
            .field("api_hash", &self.api_hash.as_ref().map(|_| "[redacted]"))
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl GrammersBackend {
    pub fn new(settings: &TelegramSettings) -> Self {
        Self {
            api_id: settings.api_id,
            api_hash: settings.api_hash.clone(),
            request_timeout: Duration::from_millis(settings.request_timeout_ms.max(1)),
        }
    }
}

/// Connection parameters for every pool tgvisor builds.
fn connection_params() -> ConnectionParams {
    ConnectionParams {
        device_model: "tgvisor".to_owned(),
        app_version: env!("CARGO_PKG_VERSION").to_owned(),
        retry_policy: Box::new(NoFloodSleep),
        updates_channel_capacity: NonZeroUsize::new(POOL_UPDATES_CAPACITY)
            .unwrap_or(NonZeroUsize::MIN),
        ..ConnectionParams::default()
    }
}

/// A panic payload as text.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// A running pool: the client, and a watch that holds the reason once the
/// connection is dead.
pub(crate) struct Pool {
    pub client: GClient,
    pub handle: SenderPoolFatHandle,
    pub updates: mpsc::Receiver<grammers_session::updates::UpdatesLike>,
    pub dead: watch::Receiver<Option<TgError>>,
    pub dead_tx: Arc<watch::Sender<Option<TgError>>>,
}

/// Builds a pool over `session`, spawns its runner and watches it: when
/// the runner ends, `dead` gets the reason (the panic message if it
/// panicked; grammers re-raises connection-task panics from `run`).
pub(crate) fn start_pool(session: Arc<TgSession>, api_id: i32) -> Pool {
    let pool = SenderPool::with_configuration(session, api_id, connection_params());
    let client = GClient::new(pool.handle.clone());
    let (dead_tx, dead) = watch::channel(None);
    let dead_tx = Arc::new(dead_tx);
    let runner = tokio::spawn(pool.runner.run());
    let tx = dead_tx.clone();
    tokio::spawn(async move {
        let reason = match runner.await {
            Ok(()) => TgError::Network("the connection was closed".into()),
            Err(e) if e.is_panic() => {
                let text = panic_text(e.into_panic().as_ref());
                tracing::error!(panic = %text, "the Telegram connection task panicked");
                TgError::Other {
                    code: 0,
                    name: format!("connection task panicked: {text}"),
                }
            }
            Err(_) => TgError::Network("the connection task was cancelled".into()),
        };
        // Keep an earlier reason (a revoked session, say).
        tx.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason);
                true
            } else {
                false
            }
        });
    });
    Pool {
        client,
        handle: pool.handle,
        updates: pool.updates,
        dead,
        dead_tx,
    }
}

#[async_trait]
impl Backend for GrammersBackend {
    fn name(&self) -> &'static str {
        "grammers"
    }

    async fn connect(
        &self,
        data: SessionData,
        resume: Option<UpdateState>,
        sink: Arc<dyn SessionSink>,
    ) -> Result<Connection, TgError> {
        let has_key = data
            .dcs
            .iter()
            .any(|d| d.id == data.home_dc && d.auth_key.is_some());
        if !has_key {
            return Err(TgError::Unauthorized);
        }
        let session = TgSession::from_data(&data);
        if let Some(state) = &resume {
            session.resume_from(state);
        }
        let writer = session.spawn_writer(sink, SESSION_WRITE_RETRY);
        let pool = start_pool(session.clone(), self.api_id);
        let client = Arc::new(GrammersClient {
            client: pool.client.clone(),
            handle: pool.handle.clone(),
            session: session.clone(),
            timeout: self.request_timeout,
            dead: pool.dead_tx.clone(),
            updates_task: Mutex::new(None),
            writer: Mutex::new(Some(writer)),
        });

        // Verify the authorization first: a revoked or unknown key is
        // reported here, not by the first real call.
        if let Err(e) = client.get_me().await {
            client.shutdown_pool();
            return Err(e);
        }
        // Pin the update state now if the session has none. Left to
        // grammers, `updates.getState` would run lazily on the stream's first
        // poll, and whatever arrived between this connect and that call
        // would be skipped as already seen. With a state, the stream starts
        // with getDifference from it and misses nothing.
        if !session.has_update_state() {
            match client
                .call(&tl::functions::updates::GetState {}, None)
                .await
            {
                Ok(tl::enums::updates::State::State(s)) => {
                    session.set_initial_update_state(s.pts, s.qts, s.date, s.seq);
                }
                Err(e) => {
                    client.shutdown_pool();
                    return Err(e);
                }
            }
        }
        session.arm();

        let (tx, rx) = mpsc::channel(UPDATES_CAPACITY);
        // A start the account has not stored yet goes first, to be stored.
        if resume.is_none() {
            let _ = tx.try_send(Incoming {
                update: None,
                state: Some(session.start_state()),
            });
        }
        let receiver = session
            .without_self(UpdatesReceiver::create(
                pool.handle.thin.clone(),
                pool.handle.session.clone(),
                pool.updates,
                UpdatesConfiguration { catch_up: true },
            ))
            .await
            .map_err(|_| TgError::Other {
                code: 0,
                name: "UPDATE_STREAM".into(),
            });
        let receiver = match receiver {
            Ok(r) => r,
            Err(e) => {
                client.shutdown_pool();
                return Err(e);
            }
        };
        let task = tokio::spawn(updates::pump(receiver, tx, session.clone()));
        *client
            .updates_task
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(task);

        let mut dead = pool.dead;
        let closed = async move {
            match dead.wait_for(Option::is_some).await {
                Ok(r) => r
                    .clone()
                    .unwrap_or_else(|| TgError::Network("the connection was closed".into())),
                Err(_) => TgError::Network("the connection was closed".into()),
            }
        }
        .boxed();
        Ok(Connection {
            client,
            updates: rx,
            closed,
        })
    }

    async fn request_code(&self, phone: &PhoneNumber) -> Result<Box<dyn PendingCode>, TgError> {
        login::request_code(self, phone).await
    }
}

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
    /// Invokes `request` under the timeout, mapping errors. `chat` fills in
    /// per-chat flood waits. Session-fatal errors also close the connection.
    async fn call<R: tl::RemoteCall>(
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

    fn shutdown_pool(&self) {
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

    fn reply_to(opts: &SendOptions) -> Option<tl::enums::InputReplyTo> {
        opts.reply_to.map(|id| {
            tl::enums::InputReplyTo::Message(tl::types::InputReplyToMessage {
                reply_to_msg_id: id,
                top_msg_id: None,
                reply_to_peer_id: None,
                quote_text: None,
                quote_entities: None,
                quote_offset: None,
                monoforum_peer_id: None,
                todo_item_id: None,
                poll_option: None,
            })
        })
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
        let request = tl::functions::messages::SendMessage {
            no_webpage: false,
            silent: opts.silent,
            background: false,
            clear_draft: false,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            allow_paid_floodskip: false,
            peer,
            reply_to: Self::reply_to(opts),
            message: text.to_owned(),
            random_id: opts.random_id,
            reply_markup: None,
            entities: None,
            schedule_date: None,
            schedule_repeat_period: None,
            send_as: None,
            quick_reply_shortcut: None,
            effect: None,
            allow_paid_stars: None,
            suggested_post: None,
            rich_message: None,
        };
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
        let media = input_media(file, kind)?;
        let request = tl::functions::messages::SendMedia {
            silent: opts.silent,
            background: false,
            clear_draft: false,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            allow_paid_floodskip: false,
            peer,
            reply_to: Self::reply_to(opts),
            media,
            message: caption.to_owned(),
            random_id: opts.random_id,
            reply_markup: None,
            entities: None,
            schedule_date: None,
            schedule_repeat_period: None,
            send_as: None,
            quick_reply_shortcut: None,
            effect: None,
            allow_paid_stars: None,
            suggested_post: None,
        };
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

/// The input media for an uploaded file.
fn input_media(file: &UploadedFile, kind: MediaKind) -> Result<tl::enums::InputMedia, TgError> {
    let parts =
        i32::try_from(file.parts).map_err(|_| TgError::BadRequest("FILE_PARTS_INVALID".into()))?;
    let input_file = if file.big {
        tl::enums::InputFile::Big(tl::types::InputFileBig {
            id: file.file_id,
            parts,
            name: file.name.clone(),
        })
    } else {
        tl::enums::InputFile::File(tl::types::InputFile {
            id: file.file_id,
            parts,
            name: file.name.clone(),
            md5_checksum: String::new(),
        })
    };
    Ok(match kind {
        MediaKind::Photo => {
            tl::enums::InputMedia::UploadedPhoto(tl::types::InputMediaUploadedPhoto {
                spoiler: false,
                live_photo: false,
                file: input_file,
                stickers: None,
                ttl_seconds: None,
                video: None,
            })
        }
        MediaKind::Document => {
            tl::enums::InputMedia::UploadedDocument(tl::types::InputMediaUploadedDocument {
                nosound_video: false,
                force_file: true,
                spoiler: false,
                file: input_file,
                thumb: None,
                mime_type: mime_for(&file.name).to_owned(),
                attributes: vec![tl::enums::DocumentAttribute::Filename(
                    tl::types::DocumentAttributeFilename {
                        file_name: file.name.clone(),
                    },
                )],
                stickers: None,
                video_cover: None,
                video_timestamp: None,
                ttl_seconds: None,
            })
        }
    })
}

/// A MIME type from a file name's extension (Telegram requires one).
fn mime_for(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("mp4") => "video/mp4",
        Some("mp3") => "audio/mpeg",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    }
}

/// A cached peer as the port's [`Peer`].
fn to_port_peer(peer: &StoredPeer, self_id: Option<i64>) -> Result<Peer, TgError> {
    let kind = peer.kind(self_id).ok_or(TgError::PeerInvalid)?;
    Ok(Peer {
        id: peer.id,
        kind,
        title: if kind == PeerKind::SelfChat {
            "Saved Messages".to_owned()
        } else {
            peer.title.clone()
        },
        username: peer.username.clone(),
    })
}

#[cfg(test)]
mod tests;
