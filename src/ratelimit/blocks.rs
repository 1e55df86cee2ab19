//! Telegram's FLOOD_WAITs on the [`RateLimiter`]: blocking a key, the
//! blocks in force, the accounts' flood log and the margins applied.

use super::flood::FloodRecord;
use super::shards::lock;
use super::state::millis;
use super::{Key, RateLimiter, Subject};
use std::time::Duration;
use tokio::time::Instant;

impl RateLimiter {
    /// A FLOOD_WAIT from Telegram: the key refuses everything until now +
    /// `wait` + margin (a block never shortens an existing longer block).
    /// Records it in the account's flood log (kept an hour) and the metrics.
    pub fn block(&self, key: &Key, wait: Duration, method: &str) {
        let now = Instant::now();
        let until = now + wait + self.inner.margin;
        {
            let mut shard = self.inner.shards.lock_key(key);
            shard.entry(key.clone()).or_default().block(until);
        }
        self.inner
            .metrics
            .blocks
            .with_label_values(&[key.limit.as_str()])
            .inc();
        tracing::info!(
            key = %key,
            method,
            wait_ms = millis(wait),
            margin_ms = millis(self.inner.margin),
            "flood wait: key blocked"
        );
        let Some(account) = key.subject.account() else {
            return;
        };
        let scope = match key.subject {
            Subject::Chat { chat, .. } => format!("chat:{chat}"),
            _ => "account".to_owned(),
        };
        let record = FloodRecord {
            at: chrono::Utc::now(),
            seconds: u32::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(u32::MAX),
            method: method.to_owned(),
            scope,
        };
        self.inner.floods.record(account, record, now);
    }

    /// The end of the key's flood-wait block, if one is in force.
    pub fn blocked_until(&self, key: &Key) -> Option<Instant> {
        let now = Instant::now();
        self.inner
            .shards
            .lock_key(key)
            .get(key)
            .and_then(|e| e.blocked_until(now))
    }

    /// Flood waits met by this account in the last hour, oldest first.
    pub fn flood_waits(&self, account: i64) -> Vec<FloodRecord> {
        self.inner.floods.of(account, Instant::now())
    }

    /// Flood waits met by all accounts together in the last hour.
    pub fn flood_waits_last_hour(&self) -> usize {
        self.inner.floods.count(Instant::now())
    }

    /// Keys under a flood-wait block now, every limit together (counted in
    /// place: no key is copied).
    pub fn blocked_keys(&self) -> usize {
        let now = Instant::now();
        self.inner
            .shards
            .all()
            .map(|shard| {
                lock(shard)
                    .values()
                    .filter(|e| e.blocked_until(now).is_some())
                    .count()
            })
            .sum()
    }

    /// Added to every flood wait's block.
    pub fn margin(&self) -> Duration {
        self.inner.margin
    }

    /// Flood waits up to this long are waited out in place.
    pub fn short_wait_threshold(&self) -> Duration {
        self.inner.short_wait_threshold
    }
}
