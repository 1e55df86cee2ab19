//! [`StoreSink`]: the account's session written through to the encrypted
//! store as the client changes it, and rotated one write at a time.

use super::messages::CallError;
use crate::sessions::{SessionData, SessionStore};
use crate::telegram::metrics::TelegramMetrics;
use crate::telegram::{SessionSink, TgError};
use async_trait::async_trait;
use tokio::sync::Mutex as AsyncMutex;

/// Writes session changes through to the encrypted store, and performs
/// rotations, one at a time: a rotation never races a write.
pub struct StoreSink {
    store: SessionStore,
    account_id: i64,
    session_id: AsyncMutex<i64>,
    home_dc: std::sync::atomic::AtomicI32,
    metrics: TelegramMetrics,
}

impl StoreSink {
    pub(super) fn new(
        store: SessionStore,
        account_id: i64,
        session_id: i64,
        home_dc: i32,
        metrics: TelegramMetrics,
    ) -> Self {
        Self {
            store,
            account_id,
            session_id: AsyncMutex::new(session_id),
            home_dc: home_dc.into(),
            metrics,
        }
    }

    /// Re-encrypts the latest session into a new row (fresh nonce, active
    /// key), deactivating the old one in the same transaction.
    pub(super) async fn rotate(&self) -> Result<i64, CallError> {
        let mut current = self.session_id.lock().await;
        let id = rotate_active(&self.store, self.account_id).await?;
        *current = id;
        Ok(id)
    }
}

#[async_trait]
impl SessionSink for StoreSink {
    async fn save(&self, data: &SessionData) -> anyhow::Result<()> {
        use std::sync::atomic::Ordering;
        let previous = self.home_dc.swap(data.home_dc, Ordering::Relaxed);
        if previous != data.home_dc {
            self.metrics.migrations.inc();
            tracing::info!(
                account_id = self.account_id,
                from = previous,
                to = data.home_dc,
                "home DC changed"
            );
        }
        let bytes = data.to_bytes();
        let session_id = self.session_id.lock().await;
        self.store
            .write(*session_id, self.account_id, &bytes)
            .await?;
        Ok(())
    }
}

/// [`SessionStore::rotate_active`]; an account without a session is `Unauthorized`.
pub(in crate::accounts) async fn rotate_active(
    store: &SessionStore,
    account_id: i64,
) -> Result<i64, CallError> {
    store
        .rotate_active(account_id)
        .await
        .map_err(|e| CallError::Internal(e.into()))?
        .ok_or(CallError::Telegram(TgError::Unauthorized))
}
