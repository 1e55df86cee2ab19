//! The drain's peer cache: resolved chats of one account, and resolving
//! through it.

use crate::domain::validation::ChatRef;
use crate::telegram::{Client, Peer, TgError};
use std::time::Duration;

/// Resolved chats of one account, by canonical reference; entries live
/// `cache.default_ttl_ms` (5 minutes by default) and are dropped
/// when Telegram says the peer is invalid.
pub type PeerCache = moka::sync::Cache<String, Peer>;

pub fn peer_cache(ttl: Duration) -> PeerCache {
    moka::sync::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(ttl)
        .build()
}

/// Resolves through the cache.
pub async fn resolve(
    client: &dyn Client,
    cache: &PeerCache,
    chat: &ChatRef,
) -> Result<Peer, TgError> {
    let key = chat.to_string();
    if let Some(peer) = cache.get(&key) {
        return Ok(peer);
    }
    match client.resolve(chat).await {
        Ok(peer) => {
            cache.insert(key, peer.clone());
            Ok(peer)
        }
        Err(e) => {
            if matches!(e, TgError::PeerInvalid) {
                cache.invalidate(&key);
            }
            Err(e)
        }
    }
}
