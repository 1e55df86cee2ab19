//! What the limiter answers: a [`Throttled`] refusal, and a key's
//! [`KeyState`] as the limits endpoints show it.

use super::window::{Quota, Window};
use super::{Key, Limit};
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

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

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Wall-clock time of a tokio instant (for display only).
pub(super) fn wall_clock(at: Instant, now: Instant) -> chrono::DateTime<chrono::Utc> {
    let ahead = chrono::TimeDelta::from_std(at.saturating_duration_since(now))
        .unwrap_or(chrono::TimeDelta::MAX);
    chrono::Utc::now()
        .checked_add_signed(ahead)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// The state of `key`, whose window is `entry` under `quota`, at `now`.
pub(super) fn key_state(key: &Key, entry: &Window, quota: Quota, now: Instant) -> KeyState {
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
