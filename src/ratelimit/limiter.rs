//! [`RateLimiter`]: decisions over one or several keys, reservations, the
//! snapshot and the sweep. Its flood-wait blocks are in `blocks.rs`, the
//! sharded key map in `shards.rs`, what it answers in `state.rs`.

use super::flood::FloodLog;
use super::metrics::{Decision, RateLimitMetrics};
use super::shards::{Locked, Shards, lock};
use super::state::{KeyState, Throttled, key_state};
use super::window::{Quota, Wait};
use super::{Key, Limit};
use crate::config::RateLimits;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Keyed sliding-window limits and flood-wait blocks (see the module doc).
/// Clones share the state.
#[derive(Clone)]
pub struct RateLimiter {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    /// By [`Limit::index`].
    pub(super) quotas: [Quota; Limit::ALL.len()],
    pub(super) shards: Shards,
    pub(super) floods: FloodLog,
    pub(super) margin: Duration,
    pub(super) short_wait_threshold: Duration,
    pub(super) metrics: RateLimitMetrics,
}

impl RateLimiter {
    pub fn new(limits: &RateLimits, metrics: RateLimitMetrics) -> Self {
        let quota = |window: Duration, max: u32| Quota::new(window, max);
        let t = &limits.telegram;
        let quotas = Limit::ALL.map(|limit| match limit {
            Limit::AccountMessages => quota(t.messages_sent.window_ms, t.messages_sent.max),
            Limit::ChatMessages => quota(t.messages_sent.window_ms, t.messages_sent.per_chat),
            Limit::MediaUploads => quota(t.media_uploads.window_ms, t.media_uploads.max),
            Limit::ChannelInvites => quota(t.channel_invites.window_ms, t.channel_invites.max),
            Limit::ApiStandard => quota(limits.api.standard.window_ms, limits.api.standard.max),
            Limit::ApiAuth => quota(limits.api.auth.window_ms, limits.api.auth.max),
            Limit::WsMessages => quota(
                limits.websocket.messages.window_ms,
                limits.websocket.messages.max,
            ),
        });
        Self {
            inner: Arc::new(Inner {
                quotas,
                shards: Shards::new(),
                floods: FloodLog::default(),
                margin: limits.flood_wait.margin_ms,
                short_wait_threshold: limits.flood_wait.short_threshold_ms,
                metrics,
            }),
        }
    }

    /// May I now? Takes a slot on success and answers how many are left.
    pub fn check(&self, key: &Key) -> Result<u32, Throttled> {
        let now = Instant::now();
        let quota = self.q(key.limit);
        let mut shard = self.inner.shards.lock_key(key);
        let entry = shard.entry(key.clone()).or_default();
        match entry.wait(quota, now) {
            None => {
                entry.grant(quota, now);
                self.inner.metrics.decision(key.limit, Decision::Allowed);
                let (used, _) = entry.in_window(quota, now);
                Ok(u32::try_from(quota.max.saturating_sub(used)).unwrap_or(u32::MAX))
            }
            Some(wait) => {
                let throttled = Throttled {
                    retry_after: entry.ready_at(quota, now) - now,
                    blocked: wait == Wait::Block,
                    limit: key.limit,
                };
                self.inner.metrics.decision(key.limit, decision_of(wait));
                Err(throttled)
            }
        }
    }

    /// All-or-nothing over several keys (account + chat): takes a slot on
    /// every key or on none. Refused, it says when all of them will allow.
    pub fn check_all(&self, keys: &[Key]) -> Result<(), Throttled> {
        let keys = self.inner.shards.with_shards(keys);
        let now = Instant::now();
        let mut locked = self.inner.shards.lock_all(&keys);
        let mut refused = Vec::new();
        for (key, shard) in &keys {
            if let Some(entry) = locked.shard(*shard).get(*key)
                && let Some(wait) = entry.wait(self.q(key.limit), now)
            {
                refused.push((*key, wait));
            }
        }
        if refused.is_empty() {
            for (key, shard) in &keys {
                let quota = self.q(key.limit);
                let entry = locked.shard(*shard).entry((*key).clone()).or_default();
                entry.grant(quota, now);
                self.inner.metrics.decision(key.limit, Decision::Allowed);
            }
            return Ok(());
        }
        for (key, wait) in &refused {
            self.inner.metrics.decision(key.limit, decision_of(*wait));
        }
        let (ready, binding) = self.ready_locked(&mut locked, &keys, now);
        let binding = binding.unwrap_or(refused[0].0);
        let blocked = locked
            .shard(self.inner.shards.of(binding))
            .get(binding)
            .is_some_and(|e| e.blocked_until(now).is_some());
        Err(Throttled {
            retry_after: ready - now,
            blocked,
            limit: binding.limit,
        })
    }

    /// When all keys would allow a grant (now if they do); no side effect.
    pub fn ready_at(&self, keys: &[Key]) -> Instant {
        let keys = self.inner.shards.with_shards(keys);
        let now = Instant::now();
        let mut locked = self.inner.shards.lock_all(&keys);
        self.ready_locked(&mut locked, &keys, now).0
    }

    /// Tell me when: books the earliest slot at which every key allows a
    /// grant and returns how long to wait for it (ZERO = go now). The booked
    /// instant counts as a grant from then on. The wait is added to
    /// `tgvisor_rate_limit_wait_seconds_total` here; do not observe it again.
    pub fn reserve(&self, keys: &[Key]) -> Duration {
        let keys = self.inner.shards.with_shards(keys);
        let now = Instant::now();
        let mut locked = self.inner.shards.lock_all(&keys);
        let (at, binding) = self.ready_locked(&mut locked, &keys, now);
        for (key, shard) in &keys {
            let quota = self.q(key.limit);
            let entry = locked.shard(*shard).entry((*key).clone()).or_default();
            let decision = entry
                .wait(quota, now)
                .map_or(Decision::Allowed, decision_of);
            self.inner.metrics.decision(key.limit, decision);
            entry.grant(quota, at);
        }
        let wait = at - now;
        if let Some(binding) = binding {
            self.inner.metrics.observe_wait(binding.limit, wait);
        }
        wait
    }

    /// Every key's state, ordered by limit then subject: `Some(account)` =
    /// that account's keys, its chats' included; `None` = every key.
    pub fn snapshot(&self, account: Option<i64>) -> Vec<KeyState> {
        let now = Instant::now();
        let mut states = Vec::new();
        for shard in self.inner.shards.all() {
            let shard = lock(shard);
            for (key, entry) in shard.iter() {
                if account.is_some_and(|a| key.subject.account() != Some(a)) {
                    continue;
                }
                states.push((key.clone(), key_state(key, entry, self.q(key.limit), now)));
            }
        }
        states.sort_by(|(a, _), (b, _)| (a.limit, &a.subject).cmp(&(b.limit, &b.subject)));
        states.into_iter().map(|(_, s)| s).collect()
    }

    /// Drops one key (its subject is gone: a closed connection).
    pub fn forget_key(&self, key: &Key) {
        self.inner.shards.lock_key(key).remove(key);
    }

    /// Drops every key and flood record of an account (it was removed).
    pub fn forget_account(&self, account: i64) {
        for shard in self.inner.shards.all() {
            lock(shard).retain(|key, _| key.subject.account() != Some(account));
        }
        self.inner.floods.forget(account);
    }

    /// Drops idle keys (whole log older than the window, no block in force)
    /// and flood records older than an hour, sets the blocked-keys gauge and
    /// answers how many keys were dropped.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut dropped = 0;
        let mut blocked = [0_i64; Limit::ALL.len()];
        for shard in self.inner.shards.all() {
            let mut shard = lock(shard);
            let before = shard.len();
            shard.retain(|key, entry| {
                if entry.blocked_until(now).is_some() {
                    blocked[key.limit.index()] += 1;
                }
                !entry.is_idle(self.q(key.limit), now)
            });
            dropped += before - shard.len();
        }
        for limit in Limit::ALL {
            self.inner
                .metrics
                .blocked_keys
                .with_label_values(&[limit.as_str()])
                .set(blocked[limit.index()]);
        }
        self.inner.floods.sweep(now);
        dropped
    }

    /// The (window, max) a limit enforces: the configured values, with a
    /// configured max of 0 taken as 1.
    pub fn quota(&self, limit: Limit) -> (Duration, u32) {
        let q = self.q(limit);
        (q.window, u32::try_from(q.max).unwrap_or(u32::MAX))
    }

    /// The metric families (for [`RateLimitMetrics::observe_wait`]).
    pub fn metrics(&self) -> &RateLimitMetrics {
        &self.inner.metrics
    }

    pub(super) fn q(&self, limit: Limit) -> Quota {
        self.inner.quotas[limit.index()]
    }

    /// The latest ready instant over `keys` and the key that sets it (none
    /// when every key is ready now).
    fn ready_locked<'k>(
        &self,
        locked: &mut Locked<'_>,
        keys: &[(&'k Key, usize)],
        now: Instant,
    ) -> (Instant, Option<&'k Key>) {
        let mut ready = (now, None);
        for (key, shard) in keys {
            if let Some(entry) = locked.shard(*shard).get(*key) {
                let at = entry.ready_at(self.q(key.limit), now);
                if at > ready.0 {
                    ready = (at, Some(*key));
                }
            }
        }
        ready
    }
}

fn decision_of(wait: Wait) -> Decision {
    match wait {
        Wait::Rate => Decision::Throttled,
        Wait::Block => Decision::Blocked,
    }
}
