//! The login attempt limiter: at most `max` attempts per `window` per
//! (username, client IP), a sliding log rather than a fixed window (a fixed
//! window lets twice the limit through around its edge).
//!
//! An attempt is counted when it starts, under the lock, so parallel
//! attempts cannot slip past the limit; a successful login removes its own
//! attempt and clears that one key, leaving every other key's count alone.
//! Memory is bounded: idle keys expire after one window and the map holds at
//! most `capacity` keys.

use moka::sync::Cache;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

type Key = (String, IpAddr);

/// Counts login attempts per (username, IP).
#[derive(Clone)]
pub struct AttemptLimiter {
    max: usize,
    window: Duration,
    log: Cache<Key, Arc<Mutex<VecDeque<Instant>>>>,
}

/// A slot taken by [`AttemptLimiter::acquire`]; pass it back on success.
#[derive(Debug)]
pub struct Attempt {
    key: Key,
}

impl AttemptLimiter {
    pub fn new(max: u32, window: Duration, capacity: u64) -> Self {
        Self {
            max: usize::try_from(max).unwrap_or(usize::MAX).max(1),
            window,
            log: Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(window)
                .build(),
        }
    }

    fn key(username: &str, ip: Option<IpAddr>) -> Key {
        (
            username.trim().to_lowercase(),
            ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        )
    }

    /// Counts an attempt, or refuses with the time until one is allowed.
    pub fn acquire(&self, username: &str, ip: Option<IpAddr>) -> Result<Attempt, Duration> {
        let key = Self::key(username, ip);
        let entry = self
            .log
            .get_with(key.clone(), || Arc::new(Mutex::new(VecDeque::new())));
        let now = Instant::now();
        let mut log = entry.lock().unwrap_or_else(|p| p.into_inner());
        while log
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            log.pop_front();
        }
        if log.len() >= self.max {
            let oldest = log.front().copied().unwrap_or(now);
            let retry = self.window.saturating_sub(now.duration_since(oldest));
            return Err(retry.max(Duration::from_secs(1)));
        }
        log.push_back(now);
        Ok(Attempt { key })
    }

    /// The attempt succeeded: its key starts afresh.
    pub fn succeeded(&self, attempt: Attempt) {
        self.log.invalidate(&attempt.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(15 * 60);

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    #[tokio::test(start_paused = true)]
    async fn the_sixth_attempt_in_the_window_is_refused_until_the_oldest_ages_out() {
        let l = AttemptLimiter::new(5, WINDOW, 1000);
        for i in 0..5 {
            assert!(l.acquire("alice", ip(1)).is_ok(), "attempt {i}");
            tokio::time::advance(Duration::from_secs(60)).await;
        }
        // 5 minutes after the first attempt: 10 more minutes to wait.
        let retry = l.acquire("alice", ip(1)).unwrap_err();
        assert_eq!(retry, Duration::from_secs(10 * 60));
        tokio::time::advance(retry).await;
        assert!(
            l.acquire("alice", ip(1)).is_ok(),
            "the oldest left the window"
        );
        assert!(l.acquire("alice", ip(1)).is_err(), "only one slot freed");
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_per_username_and_ip_and_case_insensitive() {
        let l = AttemptLimiter::new(2, WINDOW, 1000);
        l.acquire("Alice", ip(1)).unwrap();
        l.acquire("alice ", ip(1)).unwrap();
        assert!(l.acquire("ALICE", ip(1)).is_err());
        assert!(l.acquire("alice", ip(2)).is_ok(), "another IP");
        assert!(l.acquire("bob", ip(1)).is_ok(), "another user");
    }

    #[tokio::test(start_paused = true)]
    async fn success_clears_only_its_own_key() {
        let l = AttemptLimiter::new(2, WINDOW, 1000);
        l.acquire("mallory", ip(9)).unwrap();
        l.acquire("mallory", ip(9)).unwrap();
        l.acquire("alice", ip(1)).unwrap();
        l.acquire("alice", ip(1)).unwrap();
        assert!(l.acquire("alice", ip(1)).is_err());
        // Alice from another IP logs in successfully.
        let attempt = l.acquire("alice", ip(2)).unwrap();
        l.succeeded(attempt);
        assert!(
            l.acquire("mallory", ip(9)).is_err(),
            "someone else's counter stays"
        );
        assert!(
            l.acquire("alice", ip(1)).is_err(),
            "same user, other IP stays"
        );
    }
}
