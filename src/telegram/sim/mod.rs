//! An in-process simulated Telegram: the development default, so that
//! `tgvisor serve` runs with no Telegram credentials, and the world the
//! loopback fake MTProto server serves in tests.
//!
//! Conventions (Telegram's test DCs):
//! - phone numbers `+99966XYYYY` sign in on DC X (1–3) with the code made of
//!   the digit X five times (`+9996621234` → `22222`); other numbers are
//!   `PHONE_NUMBER_INVALID`;
//! - numbers whose `YYYY` starts with `9` have two-step verification on,
//!   with the password [`SIM_2FA_PASSWORD`];
//! - `me` is Saved Messages; `@echo` answers every text with the same text.
//!
//! Faults can be injected at run time: latency, FLOOD_WAIT (global, per
//! method, per chat), failing calls that drop the connection, revoked
//! sessions and banned accounts.

mod client;
mod conventions;
mod flood;
mod login;
mod state;
mod world;

pub use self::conventions::{CODE_TTL, ECHO_USER_ID, SIM_2FA_PASSWORD};
pub use self::flood::{FloodRule, FloodTarget};
pub use self::world::SimWorld;

use self::client::SimClient;
use super::{Backend, Connection, PendingCode, SessionSink, TgError, UpdateState};
use crate::domain::validation::PhoneNumber;
use crate::sessions::SessionData;
use async_trait::async_trait;
use futures_util::FutureExt;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Capacity of each connection's update channel.
const UPDATES_CAPACITY: usize = 1024;

/// The sim [`Backend`].
#[derive(Clone, Debug, Default)]
pub struct SimBackend {
    pub world: SimWorld,
}

impl SimBackend {
    pub fn new(world: SimWorld) -> Self {
        Self { world }
    }
}

#[async_trait]
impl Backend for SimBackend {
    fn name(&self) -> &'static str {
        "sim"
    }

    /// The sim keeps no update log: `resume` is ignored, updates come live.
    async fn connect(
        &self,
        session: SessionData,
        _resume: Option<UpdateState>,
        sink: Arc<dyn SessionSink>,
    ) -> Result<Connection, TgError> {
        self.world.call(None, "connect", None).await?;
        let key = session
            .dcs
            .iter()
            .find(|d| d.id == session.home_dc)
            .and_then(|d| d.auth_key.as_ref())
            .ok_or(TgError::Unauthorized)?
            .expose()
            .to_vec();
        let (kill_tx, kill_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(UPDATES_CAPACITY);
        let (conn_id, user_id) =
            self.world
                .lock()
                .open_connection(key, session.user_id, kill_tx, tx)?;
        let client = Arc::new(SimClient::new(
            self.world.clone(),
            conn_id,
            user_id,
            session,
            sink,
        ));
        let closed = async move {
            kill_rx
                .await
                .unwrap_or_else(|_| TgError::Network("the connection was closed".into()))
        }
        .boxed();
        Ok(Connection {
            client,
            updates: rx,
            closed,
        })
    }

    async fn request_code(&self, phone: &PhoneNumber) -> Result<Box<dyn PendingCode>, TgError> {
        login::request_code(&self.world, phone).await
    }
}

#[cfg(test)]
mod tests;
