//! What a [`Client`](crate::Client) needs to know: where the server is, the
//! token it authenticates with, and how it retries when the connection drops.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How a client connects and recovers.
#[derive(Clone, Debug)]
pub struct Config {
    /// The WebSocket endpoint, e.g. `ws://127.0.0.1:8080/ws`. Never put the
    /// token here: the server refuses tokens in the query string.
    pub url: String,
    /// The bearer token, sent in the `Authorization` header of every upgrade
    /// (the first connection and each reconnection).
    pub token: Token,
    /// Reconnection policy after the connection drops.
    pub reconnect: Backoff,
    /// How long one connection attempt (TCP, TLS and upgrade) may take.
    pub connect_timeout: Duration,
    /// How long a request (`subscribe`, `send`, …) waits for its reply.
    pub request_timeout: Duration,
    /// Capacity of the channel of [`Item`](crate::Item)s waiting for the
    /// application. When it is full the client stops reading the socket, and
    /// a server that finds it too slow closes with 4010 (then the client
    /// reconnects and resumes where the application is).
    pub buffer: usize,
}

impl Config {
    /// A configuration with the defaults: 5 retries from 1 s, a 10 s connect
    /// timeout, a 30 s request timeout and room for 1024 items.
    pub fn new(url: impl Into<String>, token: impl Into<Token>) -> Self {
        Self {
            url: url.into(),
            token: token.into(),
            reconnect: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            buffer: 1024,
        }
    }
}

/// A bearer token. Its `Debug` output is `[REDACTED]`, so logging a
/// [`Config`] never leaks it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the `Authorization` header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<String> for Token {
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl From<&str> for Token {
    fn from(token: &str) -> Self {
        Self(token.to_owned())
    }
}

/// Exponential backoff between reconnection attempts: before attempt `n`
/// (counting from 0) the client waits `base * 2^n`, capped at `max_delay`.
///
/// The count restarts once a new connection is established (the server sent
/// it something other than a close or an error), so a connection the server
/// accepts and then closes at once (4008, 4009) still uses up an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts after a drop before giving up with
    /// [`Error::RetriesExhausted`](crate::Error::RetriesExhausted).
    pub max_retries: u32,
    /// The first delay.
    pub base: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Pick each delay at random between half of it and all of it, so that
    /// many clients dropped together do not come back together.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            max_retries: 5,
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            jitter: true,
        }
    }
}

impl Backoff {
    /// The wait before attempt `attempt` (0 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt);
        let delay = self.base.saturating_mul(factor).min(self.max_delay);
        if !self.jitter {
            return delay;
        }
        // A fresh RandomState is randomly keyed: enough randomness for jitter
        // without a dependency.
        let random = RandomState::new().build_hasher().finish();
        let fraction = (random % 1_000) as f64 / 1_000.0;
        delay.mul_f64(0.5 + fraction / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_base_up_to_the_cap() {
        let backoff = Backoff {
            max_retries: 5,
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            jitter: false,
        };
        let delays: Vec<_> = (0..5).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        assert_eq!(backoff.delay(200), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_between_half_and_the_whole_delay() {
        let backoff = Backoff::default();
        for _ in 0..100 {
            let d = backoff.delay(2);
            assert!(
                d >= Duration::from_secs(2) && d <= Duration::from_secs(4),
                "{d:?}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_token() {
        let config = Config::new("ws://h/ws", "secret-token");
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret-token"), "{shown}");
        assert!(shown.contains("[REDACTED]"));
    }
}
