//! The application's side: [`Client`] (the stream of [`Item`]s plus
//! requests) and [`Handle`] (requests only, cloneable). Both talk to the
//! background task that owns the socket, through bounded channels.

use crate::config::Config;
use crate::error::Error;
use crate::protocol::{Ack, Event, SendFrame, Subscription};
use crate::requests::Command;
use crate::task;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// What the client hands the application, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A new event: never one already delivered, never out of order within
    /// its topic.
    Event(Event),
    /// The topic's stream has a gap the server cannot fill (close 4011, or
    /// a subscription answered `recovered: false`). Refetch the topic's
    /// state; the client carries on delivering its events from the server's
    /// current position.
    Resync {
        /// The topic to refetch.
        topic: String,
    },
    /// A new connection is up after a drop; the subscriptions are being
    /// restored from their last delivered offsets.
    Reconnected,
    /// The server refused to restore a subscription after a reconnection
    /// (an error frame, e.g. the account is gone). The topic is dropped.
    SubscriptionLost {
        /// The topic.
        topic: String,
        /// The server's error.
        error: crate::ServerError,
    },
    /// An error frame not tied to a request (e.g. a rate-limit warning).
    ServerError(crate::ServerError),
    /// The client has stopped for good: [`Error::Unauthorized`] or
    /// [`Error::RetriesExhausted`]. Nothing follows.
    Closed(Error),
}

/// A connection to tgvisor's WebSocket API that survives drops.
///
/// Read with [`next`](Self::next); make requests here or through a
/// [`Handle`]. Dropping the client closes the connection.
#[derive(Debug)]
pub struct Client {
    handle: Handle,
    items: mpsc::Receiver<Item>,
    task: JoinHandle<()>,
}

impl Client {
    /// Connects and authenticates (`Authorization: Bearer` on the upgrade),
    /// then starts the background task. The first connection is tried once:
    /// an error here means it failed ([`Error::Unauthorized`],
    /// [`Error::Connect`], [`Error::Config`]); reconnections follow
    /// [`Config::reconnect`].
    pub async fn connect(config: Config) -> Result<Self, Error> {
        let (commands_tx, commands_rx) = mpsc::channel(64);
        let (items_tx, items) = mpsc::channel(config.buffer.max(1));
        let request_timeout = config.request_timeout;
        let (task, offsets) = task::start(config, commands_rx, items_tx).await?;
        Ok(Self {
            handle: Handle {
                commands: commands_tx,
                offsets,
                request_timeout,
            },
            items,
            task,
        })
    }

    /// The next item; `None` once the client has stopped and everything
    /// before has been read.
    pub async fn next(&mut self) -> Option<Item> {
        self.items.recv().await
    }

    /// A cloneable handle for making requests from other tasks.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// See [`Handle::subscribe`].
    pub async fn subscribe(
        &self,
        topic: impl Into<String>,
        since: Option<i64>,
    ) -> Result<Subscription, Error> {
        self.handle.subscribe(topic, since).await
    }

    /// See [`Handle::unsubscribe`].
    pub async fn unsubscribe(&self, topic: impl Into<String>) -> Result<(), Error> {
        self.handle.unsubscribe(topic).await
    }

    /// See [`Handle::send`].
    pub async fn send(&self, message: SendFrame) -> Result<Ack, Error> {
        self.handle.send(message).await
    }

    /// See [`Handle::ping`].
    pub async fn ping(&self) -> Result<Duration, Error> {
        self.handle.ping().await
    }

    /// See [`Handle::offsets`].
    pub fn offsets(&self) -> HashMap<String, i64> {
        self.handle.offsets()
    }

    /// Closes the connection (close code 1000) and waits for the background
    /// task to finish.
    pub async fn close(self) {
        let Self {
            handle,
            items,
            task,
        } = self;
        // With no one to take items, the task stops even if it was waiting
        // for room in the channel; the command only makes it stop sooner.
        drop(items);
        let _ = handle.commands.try_send(Command::Close);
        if let Err(e) = task.await {
            tracing::warn!(error = %e, "the client's task failed");
        }
    }
}

/// Makes requests on a [`Client`]'s connection; clone it freely. Each
/// request gets a unique id and resolves with the server's matching reply.
#[derive(Clone, Debug)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    offsets: Arc<Mutex<HashMap<String, i64>>>,
    request_timeout: Duration,
}

impl Handle {
    /// Subscribes to `topic` (`account:<id>`). With `since`, the server
    /// first replays the events after that offset; with `None`, delivery
    /// starts from now. Either way the client remembers the topic and
    /// restores it after every reconnection.
    ///
    /// Fails with [`Error::ResyncRequired`] if `since` is older than the
    /// server's history.
    pub async fn subscribe(
        &self,
        topic: impl Into<String>,
        since: Option<i64>,
    ) -> Result<Subscription, Error> {
        let topic = topic.into();
        self.request(|reply| Command::Subscribe {
            topic,
            since,
            reply,
        })
        .await
    }

    /// Unsubscribes. Events on the topic stop at once, and it is no longer
    /// restored after a reconnection.
    pub async fn unsubscribe(&self, topic: impl Into<String>) -> Result<(), Error> {
        let topic = topic.into();
        self.request(|reply| Command::Unsubscribe { topic, reply })
            .await
    }

    /// Queues a message; resolves with the server's ack. On
    /// [`Error::Disconnected`] it is safe to send again with the same
    /// idempotency key.
    pub async fn send(&self, message: SendFrame) -> Result<Ack, Error> {
        self.request(|reply| Command::Send { message, reply }).await
    }

    /// Pings the server; resolves with the round-trip time.
    pub async fn ping(&self) -> Result<Duration, Error> {
        self.request(|reply| Command::Ping { reply }).await
    }

    /// The resume point of each subscribed topic: the offset of the last
    /// event delivered, or the topic's offset when the subscription began if
    /// that is later. Save it to resume a later session with
    /// `subscribe(topic, Some(offset))`.
    pub fn offsets(&self) -> HashMap<String, i64> {
        self.offsets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| Error::Closed)?;
        match tokio::time::timeout(self.request_timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout(self.request_timeout)),
        }
    }
}
