//! The login attempt limiter: at most `max` attempts per `window` per
//! client address, whatever usernames they name (so random usernames from
//! one address are refused like one username), a sliding log rather than a
//! fixed window (a fixed window lets twice the limit through around its
//! edge). The log is the rate limiter's [`Window`], so both limiters share
//! one sliding-window implementation; this one adds the per-address keys,
//! the taking back of a success and the once-per-refusal audit flag.
//!
//! An attempt is counted when it starts, under the lock, so parallel
//! attempts cannot slip past the limit; a successful one is taken back
//! (only that one: a success between failures does not reset the count).
//! Memory is bounded: idle keys expire after one window and the map holds
//! at most `capacity` keys.

use crate::ratelimit::window::{Quota, Window};
use moka::sync::Cache;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

type Key = IpAddr;

/// Counts attempts per client address.
#[derive(Clone)]
pub struct AttemptLimiter {
    quota: Quota,
    log: Cache<Key, Arc<Mutex<Entry>>>,
}

#[derive(Default)]
struct Entry {
    /// The address's attempts in the window (never blocked: no flood waits
    /// here).
    attempts: Window,
    /// A refusal was already reported since the last accepted attempt.
    refused: bool,
}

/// An attempt over the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// When the next attempt will be accepted.
    pub retry_after: Duration,
    /// The first refusal since the key was last accepted (audit it once).
    pub first: bool,
}

/// A slot taken by [`AttemptLimiter::acquire`]; pass it back on success.
#[derive(Debug)]
pub struct Attempt {
    key: Key,
    at: Instant,
}

impl AttemptLimiter {
    pub fn new(max: u32, window: Duration, capacity: u64) -> Self {
        Self {
            quota: Quota::new(window, max),
            log: Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(window)
                .build(),
        }
    }

    /// IPv6 addresses count per /64, the block one subscriber usually
    /// holds; IPv4-mapped IPv6 addresses count as the IPv4 address.
    fn key(ip: Option<IpAddr>) -> Key {
        match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V6(v6)) => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
            Some(v4) => v4,
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    }

    /// Counts an attempt, or refuses with the time until one is allowed
    /// (at least a second).
    pub fn acquire(&self, ip: Option<IpAddr>) -> Result<Attempt, Refused> {
        let key = Self::key(ip);
        let entry = self.log.get_with(key, Default::default);
        let now = Instant::now();
        let mut entry = entry.lock().unwrap_or_else(|p| p.into_inner());
        if entry.attempts.wait(self.quota, now).is_some() {
            let retry = entry.attempts.ready_at(self.quota, now) - now;
            let first = !entry.refused;
            entry.refused = true;
            return Err(Refused {
                retry_after: retry.max(Duration::from_secs(1)),
                first,
            });
        }
        entry.attempts.grant(self.quota, now);
        entry.refused = false;
        Ok(Attempt { key, at: now })
    }

    /// The attempt succeeded: it no longer counts. The address's other
    /// attempts still do.
    pub fn succeeded(&self, attempt: Attempt) {
        if let Some(entry) = self.log.get(&attempt.key) {
            let mut entry = entry.lock().unwrap_or_else(|p| p.into_inner());
            entry.attempts.take_back(attempt.at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(15 * 60);

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    #[actix_rt::test]
    async fn the_sixth_attempt_in_the_window_is_refused_until_the_oldest_ages_out() {
        tokio::time::pause();
        let l = AttemptLimiter::new(5, WINDOW, 1000);
        for i in 0..5 {
            assert!(l.acquire(ip(1)).is_ok(), "attempt {i}");
            tokio::time::advance(Duration::from_secs(60)).await;
        }
        // 5 minutes after the first attempt: 10 more minutes to wait.
        let refused = l.acquire(ip(1)).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(10 * 60));
        assert!(refused.first);
        assert!(!l.acquire(ip(1)).unwrap_err().first, "reported once");
        tokio::time::advance(refused.retry_after).await;
        assert!(l.acquire(ip(1)).is_ok(), "the oldest left the window");
        assert!(l.acquire(ip(1)).is_err(), "only one slot freed");
    }

    #[actix_rt::test]
    async fn keys_are_per_address_with_ipv6_per_64_and_mapped_ipv4_as_ipv4() {
        tokio::time::pause();
        let l = AttemptLimiter::new(2, WINDOW, 1000);
        let v6 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        l.acquire(v6("2001:db8:1:2::1")).unwrap();
        l.acquire(v6("2001:db8:1:2:ffff::9")).unwrap();
        assert!(l.acquire(v6("2001:db8:1:2::77")).is_err(), "same /64");
        assert!(l.acquire(v6("2001:db8:1:3::1")).is_ok(), "another /64");
        l.acquire(v6("::ffff:10.0.0.1")).unwrap();
        l.acquire(ip(1)).unwrap();
        assert!(l.acquire(ip(1)).is_err(), "mapped IPv4 is IPv4");
        assert!(l.acquire(ip(2)).is_ok(), "another address");
    }

    #[actix_rt::test]
    async fn a_success_takes_back_only_its_own_attempt() {
        tokio::time::pause();
        let l = AttemptLimiter::new(3, WINDOW, 1000);
        l.acquire(ip(9)).unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        let good = l.acquire(ip(9)).unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        l.acquire(ip(9)).unwrap();
        assert!(l.acquire(ip(9)).is_err());
        l.succeeded(good);
        // One slot back, not a fresh start: the failures still count.
        assert!(l.acquire(ip(9)).is_ok());
        assert!(l.acquire(ip(9)).is_err());
    }
}
