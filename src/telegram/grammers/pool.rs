//! A grammers connection pool: the parameters tgvisor builds every pool
//! with, and the runner task whose end (quit, error or panic) marks the
//! connection dead.

use super::convert::NoFloodSleep;
use super::session::TgSession;
use crate::telegram::TgError;
use grammers_client::Client as GClient;
use grammers_client::sender::{ConnectionParams, SenderPool, SenderPoolFatHandle};
use std::num::NonZeroUsize;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Capacity of grammers' internal channel between the network and the
/// update stream: when full, grammers drops updates (they come back through
/// getDifference, but only after a gap is noticed), so keep it roomy.
const POOL_UPDATES_CAPACITY: usize = 2048;

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
pub(super) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// A running pool: the client, and a watch that holds the reason once the
/// connection is dead.
pub(super) struct Pool {
    pub client: GClient,
    pub handle: SenderPoolFatHandle,
    pub updates: mpsc::Receiver<grammers_session::updates::UpdatesLike>,
    pub dead: watch::Receiver<Option<TgError>>,
    pub dead_tx: Arc<watch::Sender<Option<TgError>>>,
}

/// Builds a pool over `session`, spawns its runner and watches it: when
/// the runner ends, `dead` gets the reason (the panic message if it
/// panicked; grammers re-raises connection-task panics from `run`).
pub(super) fn start_pool(session: Arc<TgSession>, api_id: i32) -> Pool {
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
