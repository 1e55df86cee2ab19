//! The errors a client reports, to a request's caller or as the terminal
//! [`Item::Closed`](crate::Item::Closed).

use std::time::Duration;

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The server refused the token (close 4001, or 401/403 on the upgrade):
    /// it expired or was revoked. The client does not retry; connect again
    /// with a new token.
    #[error("unauthorized: the server refused the token (expired or revoked): {reason}")]
    Unauthorized {
        /// The server's reason, if it gave one.
        reason: String,
    },
    /// The server answered the request with an error frame.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The connection dropped before the reply came. The request may or may
    /// not have reached the server; a `send` is safe to retry with the same
    /// idempotency key.
    #[error("disconnected before the reply came")]
    Disconnected,
    /// A `subscribe` asked for an offset the server no longer keeps (close
    /// 4011): fetch the topic's state again, then subscribe with `None`.
    #[error("resync required for {topic}: its offset is no longer in the server's history")]
    ResyncRequired {
        /// The topic to refetch.
        topic: String,
    },
    /// Every reconnection attempt failed; the client has stopped.
    #[error("gave up after {attempts} reconnection attempts; last: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        last: String,
    },
    /// The first connection failed (the client retries only once it has
    /// connected).
    #[error("could not connect: {0}")]
    Connect(String),
    /// No reply within [`Config::request_timeout`](crate::Config::request_timeout).
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The client has stopped (closed by the application, or after a
    /// terminal error).
    #[error("the client is closed")]
    Closed,
    /// The server sent something that breaks the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// An error frame from the server: `{"type":"error","id"?,"code","message","retry_after_ms"?}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("server error {code}: {message}")]
pub struct ServerError {
    /// A stable machine-readable code, e.g. `rate_limited`.
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
    /// When the server says to try again no sooner than this.
    pub retry_after: Option<Duration>,
}
