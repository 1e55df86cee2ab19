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

mod client;
pub mod convert;
mod login;
pub mod peers;
mod pool;
mod requests;
pub mod session;
mod updates;

pub use self::client::GrammersClient;

use self::pool::start_pool;
use self::session::TgSession;
use super::{
    Backend, Client, Connection, Incoming, PendingCode, SessionSink, TgError, UpdateState,
};
use crate::config::TelegramSettings;
use crate::domain::validation::PhoneNumber;
use crate::sessions::SessionData;
use async_trait::async_trait;
use futures_util::FutureExt;
use grammers_client::sender::UpdatesConfiguration;
use grammers_mtsender::UpdatesReceiver;
use grammers_tl_types as tl;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Capacity of a connection's update channel (tgvisor's side).
const UPDATES_CAPACITY: usize = 1024;
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
            request_timeout: settings.request_timeout_ms.max(Duration::from_millis(1)),
        }
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
        let client = Arc::new(GrammersClient::new(
            &pool,
            session.clone(),
            self.request_timeout,
            writer,
        ));

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
        client.set_updates_task(task);

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
        login::request_code(
            self.api_id,
            self.api_hash.as_ref(),
            self.request_timeout,
            phone,
        )
        .await
    }
}

#[cfg(test)]
mod tests;
