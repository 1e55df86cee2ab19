//! Requests: what the application asks for ([`Command`]), and what is
//! written and waiting for its reply ([`Pending`]).

use crate::error::Error;
use crate::protocol::{Ack, SendFrame, Subscription};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Where a request's answer goes.
type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// A request from the application.
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe {
        topic: String,
        since: Option<i64>,
        reply: Reply<Subscription>,
    },
    Unsubscribe {
        topic: String,
        reply: Reply<()>,
    },
    Send {
        message: SendFrame,
        reply: Reply<Ack>,
    },
    Ping {
        reply: Reply<Duration>,
    },
    Close,
}

impl Command {
    pub(crate) fn fail(self, error: Error) {
        match self {
            Self::Subscribe { reply, .. } => drop(reply.send(Err(error))),
            Self::Unsubscribe { reply, .. } => drop(reply.send(Err(error))),
            Self::Send { reply, .. } => drop(reply.send(Err(error))),
            Self::Ping { reply } => drop(reply.send(Err(error))),
            Self::Close => {}
        }
    }
}

/// A request written and waiting for its reply.
#[derive(Debug)]
pub(crate) enum Pending {
    Subscribe {
        topic: String,
        since: Option<i64>,
        /// `None` when the client restores the subscription itself.
        reply: Option<Reply<Subscription>>,
    },
    Unsubscribe(Reply<()>),
    Send(Reply<Ack>),
    Ping {
        sent: Instant,
        reply: Reply<Duration>,
    },
}

impl Pending {
    pub(crate) fn fail(self, error: Error) {
        match self {
            Self::Subscribe { reply, .. } => {
                if let Some(reply) = reply {
                    drop(reply.send(Err(error)));
                }
            }
            Self::Unsubscribe(reply) => drop(reply.send(Err(error))),
            Self::Send(reply) => drop(reply.send(Err(error))),
            Self::Ping { reply, .. } => drop(reply.send(Err(error))),
        }
    }
}

/// A reply whose id names no request of its kind: fail that request (if
/// any) rather than leave it hanging.
pub(crate) fn mismatched(kind: &str, pending: Option<Pending>) {
    match pending {
        Some(pending) => {
            tracing::warn!(kind, "a reply of the wrong kind for its request");
            pending.fail(Error::Protocol(format!(
                "`{kind}` answered another kind of request"
            )));
        }
        None => tracing::debug!(kind, "a reply for no request in flight"),
    }
}
