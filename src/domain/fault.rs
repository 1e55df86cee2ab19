//! Whose doing a failure is: the vocabulary of the `fault` metric label.
//!
//! Health judges the service on what the service (or Telegram, on the
//! service's behalf) got wrong, never on what one client did to itself: a
//! bad frame, a failed sign-in, a request over its own limit, a message to
//! a chat that does not exist. Each place that counts a failure decides,
//! where it knows, which of the two it was, and labels the count with it.

use serde::Serialize;

/// Whose doing a failure (or an ending) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// Nobody's: an orderly ending (a client's own close, a shutdown).
    None,
    /// The client's (or its user's): bad input, failed authentication, its
    /// own limits, its own bad peers, going away without a word.
    Client,
    /// The service's, or of what it depends on (database, Telegram, the
    /// network between them): what health and alerts judge.
    Server,
}

impl Fault {
    /// Every value, in label order.
    pub const ALL: [Fault; 3] = [Fault::None, Fault::Client, Fault::Server];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Client => "client",
            Fault::Server => "server",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
