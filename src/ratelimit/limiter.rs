//! [`RateLimiter`]: the sharded key map, decisions over one or several keys,
//! reservations and flood-wait blocks.

use super::flood::{FloodLog, FloodRecord};
use super::metrics::{Decision, RateLimitMetrics};
use super::window::{Quota, Wait, Window};
use super::{Key, Limit};
use crate::config::RateLimits;
use serde::Serialize;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Independent locks over the key map.
const SHARDS: usize = 16;

/// Refused: when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    /// From now until every key involved allows a grant.
    pub retry_after: Duration,
    /// A flood-wait block, not the configured rate.
    pub blocked: bool,
    /// The limit that refuses longest.
    pub limit: Limit,
}

impl std::fmt::Display for Throttled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = if self.blocked { "blocked" } else { "over" };
        write!(
            f,
            "{why} the {} limit; retry in {} ms",
            self.limit,
            self.retry_after.as_millis()
        )
    }
}

impl std::error::Error for Throttled {}

/// One key as `GET /accounts/{id}/limits` and `/health/rate-limits` show it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct KeyState {
    pub limit: Limit,
    /// `account:5`, `chat:5:777`, `user:3` or `connection:9`.
    pub subject: String,
    pub window_ms: u64,
    pub max: u32,
    /// Grants in the window ending now (slots booked ahead included).
    pub used: u32,
    pub remaining: u32,
    /// Until the oldest grant in the window leaves it; 0 when empty.
    pub resets_in_ms: u64,
    /// The end of a flood-wait block in force.
    pub blocked_until: Option<chrono::DateTime<chrono::Utc>>,
    pub blocked_for_ms: Option<u64>,
}

type Shard = HashMap<Key, Window>;

/// Keyed sliding-window limits and flood-wait blocks (see the module doc).
/// Clones share the state.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    /// By [`Limit::index`].
    quotas: [Quota; Limit::ALL.len()],
    shards: Vec<Mutex<Shard>>,
    /// Picks a key's shard.
    hasher: RandomState,
    floods: FloodLog,
    margin: Duration,
    short_wait_threshold: Duration,
    metrics: RateLimitMetrics,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Wall-clock time of a tokio instant (for display only).
fn wall_clock(at: Instant, now: Instant) -> chrono::DateTime<chrono::Utc> {
    let ahead = chrono::TimeDelta::from_std(at.saturating_duration_since(now))
        .unwrap_or(chrono::TimeDelta::MAX);
    chrono::Utc::now()
        .checked_add_signed(ahead)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// Several shards locked at once, in index order.
struct Locked<'a> {
    guards: Vec<(usize, MutexGuard<'a, Shard>)>,
}

impl Locked<'_> {
    fn shard(&mut self, index: usize) -> &mut Shard {
        let pos = self
            .guards
            .binary_search_by_key(&index, |(i, _)| *i)
            .unwrap_or_else(|_| unreachable!("every key's shard is locked"));
        &mut self.guards[pos].1
    }
}

impl RateLimiter {
    pub fn new(limits: &RateLimits, metrics: RateLimitMetrics) -> Self {
        let quota = |window_ms: u64, max: u32| Quota::new(Duration::from_millis(window_ms), max);
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
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
                hasher: RandomState::new(),
                floods: FloodLog::default(),
                margin: Duration::from_millis(limits.flood_wait.margin_ms),
                short_wait_threshold: Duration::from_millis(limits.flood_wait.short_threshold_ms),
                metrics,
            }),
        }
    }

    /// May I now? Takes a slot on success and answers how many are left.
    pub fn check(&self, key: &Key) -> Result<u32, Throttled> {
        let now = Instant::now();
        let quota = self.q(key.limit);
        let mut shard = lock(&self.inner.shards[self.shard_of(key)]);
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
        let keys = self.with_shards(keys);
        let now = Instant::now();
        let mut locked = self.lock_all(&keys);
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
            .shard(self.shard_of(binding))
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
        let keys = self.with_shards(keys);
        let now = Instant::now();
        let mut locked = self.lock_all(&keys);
        self.ready_locked(&mut locked, &keys, now).0
    }

    /// Tell me when: books the earliest slot at which every key allows a
    /// grant and returns how long to wait for it (ZERO = go now). The booked
    /// instant counts as a grant from then on. The wait is added to
    /// `tgvisor_rate_limit_wait_seconds_total` here; do not observe it again.
    pub fn reserve(&self, keys: &[Key]) -> Duration {
        let keys = self.with_shards(keys);
        let now = Instant::now();
        let mut locked = self.lock_all(&keys);
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

    /// A FLOOD_WAIT from Telegram: the key refuses everything until now +
    /// `wait` + margin (a block never shortens an existing longer block).
    /// Records it in the account's flood log (kept an hour) and the metrics.
    pub fn block(&self, key: &Key, wait: Duration, method: &str) {
        let now = Instant::now();
        let until = now + wait + self.inner.margin;
        {
            let mut shard = lock(&self.inner.shards[self.shard_of(key)]);
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
            super::Subject::Chat { chat, .. } => format!("chat:{chat}"),
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
        lock(&self.inner.shards[self.shard_of(key)])
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
            .iter()
            .map(|shard| {
                lock(shard)
                    .values()
                    .filter(|e| e.blocked_until(now).is_some())
                    .count()
            })
            .sum()
    }

    /// Every key's state, ordered by limit then subject: `Some(account)` =
    /// that account's keys, its chats' included; `None` = every key.
    pub fn snapshot(&self, account: Option<i64>) -> Vec<KeyState> {
        let now = Instant::now();
        let mut states = Vec::new();
        for shard in &self.inner.shards {
            let shard = lock(shard);
            for (key, entry) in shard.iter() {
                if account.is_some_and(|a| key.subject.account() != Some(a)) {
                    continue;
                }
                states.push((key.clone(), self.key_state(key, entry, now)));
            }
        }
        states.sort_by(|(a, _), (b, _)| (a.limit, &a.subject).cmp(&(b.limit, &b.subject)));
        states.into_iter().map(|(_, s)| s).collect()
    }

    /// Drops one key (its subject is gone: a closed connection).
    pub fn forget_key(&self, key: &Key) {
        lock(&self.inner.shards[self.shard_of(key)]).remove(key);
    }

    /// Drops every key and flood record of an account (it was removed).
    pub fn forget_account(&self, account: i64) {
        for shard in &self.inner.shards {
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
        for shard in &self.inner.shards {
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

    /// Added to every flood wait's block.
    pub fn margin(&self) -> Duration {
        self.inner.margin
    }

    /// Flood waits up to this long are waited out in place.
    pub fn short_wait_threshold(&self) -> Duration {
        self.inner.short_wait_threshold
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

    fn q(&self, limit: Limit) -> Quota {
        self.inner.quotas[limit.index()]
    }

    fn shard_of(&self, key: &Key) -> usize {
        // The remainder is below SHARDS, so the cast cannot truncate.
        (self.inner.hasher.hash_one(key) % SHARDS as u64) as usize
    }

    /// Locks the shards of `keys` in index order.
    fn lock_all<'a>(&'a self, keys: &[(&Key, usize)]) -> Locked<'a> {
        let mut indices: Vec<usize> = keys.iter().map(|(_, s)| *s).collect();
        indices.sort_unstable();
        indices.dedup();
        Locked {
            guards: indices
                .into_iter()
                .map(|i| (i, lock(&self.inner.shards[i])))
                .collect(),
        }
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

    fn key_state(&self, key: &Key, entry: &Window, now: Instant) -> KeyState {
        let quota = self.q(key.limit);
        let (used, first) = entry.in_window(quota, now);
        let used = used.min(quota.max);
        let blocked = entry.blocked_until(now);
        KeyState {
            limit: key.limit,
            subject: key.subject.to_string(),
            window_ms: millis(quota.window),
            max: u32::try_from(quota.max).unwrap_or(u32::MAX),
            used: u32::try_from(used).unwrap_or(u32::MAX),
            remaining: u32::try_from(quota.max - used).unwrap_or(u32::MAX),
            resets_in_ms: first.map_or(0, |f| millis((f + quota.window) - now)),
            blocked_until: blocked.map(|b| wall_clock(b, now)),
            blocked_for_ms: blocked.map(|b| millis(b - now)),
        }
    }

    /// `keys` without repeats, each with its shard.
    fn with_shards<'k>(&self, keys: &'k [Key]) -> Vec<(&'k Key, usize)> {
        let mut out: Vec<(&Key, usize)> = Vec::with_capacity(keys.len());
        for key in keys {
            if !out.iter().any(|(k, _)| *k == key) {
                out.push((key, self.shard_of(key)));
            }
        }
        out
    }
}

fn decision_of(wait: Wait) -> Decision {
    match wait {
        Wait::Rate => Decision::Throttled,
        Wait::Block => Decision::Blocked,
    }
}
