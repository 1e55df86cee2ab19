//! The background task that owns the socket: it writes requests, matches
//! replies to them, dedupes events, and when the connection drops it
//! reconnects with backoff and restores every subscription.

use crate::client::Item;
use crate::config::Config;
use crate::connect::{self, Failure, Socket};
use crate::error::{Error, ServerError};
use crate::protocol::{self, Ack, Incoming, Outgoing, Subscription};
use crate::requests::{Command, Pending, mismatched};
use crate::topics::Topics;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Close code: the token was refused.
const CLOSE_UNAUTHORIZED: u16 = 4001;
/// Close code: a subscription's offset is no longer in the server's history.
const CLOSE_RESYNC: u16 = 4011;

/// Why a connection ended.
enum End {
    /// The application closed the client or dropped it: stop quietly.
    Stop,
    /// The token was refused: stop with an error.
    Unauthorized(String),
    /// Anything else: reconnect.
    Lost(String),
}

/// The application is gone; stop.
struct Gone;

/// Opens the first connection and spawns the task; returns it with the
/// shared map behind [`Client::offsets`](crate::Client::offsets).
pub(crate) async fn start(
    config: Config,
    commands: mpsc::Receiver<Command>,
    items: mpsc::Sender<Item>,
) -> Result<(JoinHandle<()>, Arc<Mutex<HashMap<String, i64>>>), Error> {
    connect::upgrade_request(&config)?;
    let socket = connect::connect(&config).await.map_err(|e| match e {
        Failure::Unauthorized(reason) => Error::Unauthorized { reason },
        Failure::Other(why) => Error::Connect(why),
    })?;
    let task = Task {
        config,
        commands,
        items,
        topics: Topics::default(),
        pending: HashMap::new(),
        next_id: 1,
        retry_floor: None,
    };
    let offsets = task.topics.shared();
    Ok((tokio::spawn(task.run(socket)), offsets))
}

struct Task {
    config: Config,
    commands: mpsc::Receiver<Command>,
    items: mpsc::Sender<Item>,
    topics: Topics,
    /// Requests written on the current connection, by id.
    pending: HashMap<u64, Pending>,
    /// The next request id; ids are never reused, even across connections.
    next_id: u64,
    /// A `retry_after_ms` from the server: the next reconnection waits at
    /// least this long.
    retry_floor: Option<Duration>,
}

impl Task {
    async fn run(mut self, socket: Socket) {
        let mut socket = Some(socket);
        // Reconnection attempts since the last established connection.
        let mut attempts = 0;
        let mut last = String::new();
        loop {
            if let Some(mut open) = socket.take() {
                let (end, established) = self.serve(&mut open).await;
                for (_, pending) in self.pending.drain() {
                    pending.fail(Error::Disconnected);
                }
                if established {
                    attempts = 0;
                }
                match end {
                    End::Stop => {
                        let frame = CloseFrame {
                            code: CloseCode::Normal,
                            reason: "".into(),
                        };
                        drop(open.close(Some(frame)).await);
                        return;
                    }
                    End::Unauthorized(reason) => {
                        return self.finish(Error::Unauthorized { reason }).await;
                    }
                    End::Lost(why) => {
                        tracing::info!(reason = %why, "connection lost");
                        last = why;
                    }
                }
            }
            if attempts >= self.config.reconnect.max_retries {
                return self
                    .finish(Error::RetriesExhausted { attempts, last })
                    .await;
            }
            let delay = self.config.reconnect.delay(attempts);
            let delay = delay.max(self.retry_floor.take().unwrap_or_default());
            attempts += 1;
            if self.wait(delay).await.is_err() {
                return;
            }
            match connect::connect(&self.config).await {
                Ok(open) => {
                    tracing::info!(attempt = attempts, "reconnected");
                    if self.deliver(Item::Reconnected).await.is_break() {
                        return;
                    }
                    socket = Some(open);
                }
                Err(Failure::Unauthorized(reason)) => {
                    return self.finish(Error::Unauthorized { reason }).await;
                }
                Err(Failure::Other(why)) => {
                    tracing::warn!(attempt = attempts, error = %why, "reconnection failed");
                    last = why;
                }
            }
        }
    }

    /// Serves one connection until it ends; also says whether it was
    /// established (the server sent something besides a close or an error).
    /// On [`End::Stop`] the caller closes the socket (code 1000).
    async fn serve(&mut self, socket: &mut Socket) -> (End, bool) {
        let mut established = false;
        for (topic, since) in self.topics.resume_points() {
            let id = self.id();
            let text = Outgoing::Subscribe {
                id,
                topic: &topic,
                since,
            }
            .to_json();
            let reply = None;
            self.pending.insert(
                id,
                Pending::Subscribe {
                    topic,
                    since,
                    reply,
                },
            );
            if let Err(e) = socket.send(Message::text(text)).await {
                return (End::Lost(e.to_string()), established);
            }
        }
        loop {
            tokio::select! {
                () = self.items.closed() => return (End::Stop, established),
                command = self.commands.recv() => {
                    let Some(command) = command else { return (End::Stop, established) };
                    if let Command::Close = command {
                        return (End::Stop, established);
                    }
                    if let Err(e) = self.write(socket, command).await {
                        return (End::Lost(e), established);
                    }
                }
                message = socket.next() => match message {
                    None => return (End::Lost("the connection ended".into()), established),
                    Some(Err(e)) => return (End::Lost(e.to_string()), established),
                    Some(Ok(Message::Text(text))) => match self.on_frame(&text).await {
                        ControlFlow::Continue(settled) => established |= settled,
                        ControlFlow::Break(Gone) => return (End::Stop, established),
                    },
                    Some(Ok(Message::Close(frame))) => return (self.on_close(frame).await, established),
                    // tungstenite answers pings itself as the reading goes on.
                    Some(Ok(Message::Ping(_))) => established = true,
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    /// Writes a request and records it as pending.
    async fn write(&mut self, socket: &mut Socket, command: Command) -> Result<(), String> {
        let id = self.id();
        let (text, pending) = match command {
            Command::Subscribe {
                topic,
                since,
                reply,
            } => {
                let text = Outgoing::Subscribe {
                    id,
                    topic: &topic,
                    since,
                }
                .to_json();
                let reply = Some(reply);
                (
                    text,
                    Pending::Subscribe {
                        topic,
                        since,
                        reply,
                    },
                )
            }
            Command::Unsubscribe { topic, reply } => {
                // Stop delivering and restoring it now, whatever the reply.
                self.topics.remove(&topic);
                let text = Outgoing::Unsubscribe { id, topic: &topic }.to_json();
                (text, Pending::Unsubscribe(reply))
            }
            Command::Send { message, reply } => {
                let text = Outgoing::Send {
                    id,
                    message: &message,
                }
                .to_json();
                (text, Pending::Send(reply))
            }
            Command::Ping { reply } => {
                let sent = Instant::now();
                (
                    Outgoing::Ping { id }.to_json(),
                    Pending::Ping { sent, reply },
                )
            }
            Command::Close => return Ok(()),
        };
        self.pending.insert(id, pending);
        socket
            .send(Message::text(text))
            .await
            .map_err(|e| e.to_string())
    }

    /// Handles a text frame; `Continue(true)` if it shows the connection is
    /// established.
    async fn on_frame(&mut self, text: &str) -> ControlFlow<Gone, bool> {
        let frame: Incoming = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an unreadable frame");
                return ControlFlow::Continue(false);
            }
        };
        match frame {
            Incoming::AuthOk { connection_id } => {
                tracing::debug!(%connection_id, "authenticated");
            }
            Incoming::Subscribed {
                id,
                topic,
                offset,
                recovered,
            } => {
                self.on_subscribed(&id, topic, offset, recovered).await?;
            }
            Incoming::Unsubscribed { id } => match self.take(&id) {
                Some(Pending::Unsubscribe(reply)) => drop(reply.send(Ok(()))),
                other => mismatched("unsubscribed", other),
            },
            Incoming::Ack {
                id,
                message_id,
                status,
            } => match self.take(&id) {
                Some(Pending::Send(reply)) => drop(reply.send(Ok(Ack { message_id, status }))),
                other => mismatched("ack", other),
            },
            Incoming::Pong { id } => match self.take(&id) {
                Some(Pending::Ping { sent, reply }) => drop(reply.send(Ok(sent.elapsed()))),
                other => mismatched("pong", other),
            },
            Incoming::Event(event) => {
                if self.topics.accept(&event) {
                    self.deliver(Item::Event(event)).await?;
                } else {
                    tracing::debug!(topic = %event.topic, offset = event.offset, "dropping a duplicate or unsubscribed event");
                }
            }
            Incoming::Error {
                id,
                code,
                message,
                retry_after_ms,
            } => {
                let error = protocol::server_error(code, message, retry_after_ms);
                self.on_error(&id, error).await?;
                return ControlFlow::Continue(false);
            }
            Incoming::Unknown => {
                tracing::debug!("ignoring a frame of an unknown type");
                return ControlFlow::Continue(false);
            }
        }
        ControlFlow::Continue(true)
    }

    async fn on_subscribed(
        &mut self,
        id: &serde_json::Value,
        topic: String,
        offset: Option<i64>,
        recovered: bool,
    ) -> ControlFlow<Gone> {
        let (asked, since, reply) = match self.take(id) {
            Some(Pending::Subscribe {
                topic,
                since,
                reply,
            }) => (topic, since, reply),
            other => {
                mismatched("subscribed", other);
                return ControlFlow::Continue(());
            }
        };
        if asked != topic {
            tracing::warn!(%asked, answered = %topic, "`subscribed` names another topic");
        }
        // A restoration the application has since cancelled stays cancelled.
        if reply.is_none() && !self.topics.contains(&asked) {
            return ControlFlow::Continue(());
        }
        let gap = self.topics.confirmed(&asked, since, offset, recovered);
        if let Some(reply) = reply {
            let subscription = Subscription {
                topic: asked.clone(),
                offset,
                recovered,
            };
            drop(reply.send(Ok(subscription)));
        }
        if gap {
            tracing::info!(topic = %asked, "events were lost: resync required");
            self.deliver(Item::Resync { topic: asked }).await?;
        }
        ControlFlow::Continue(())
    }

    async fn on_error(&mut self, id: &serde_json::Value, error: ServerError) -> ControlFlow<Gone> {
        if id.is_null() {
            tracing::warn!(code = %error.code, message = %error.message, "server error");
            if let Some(after) = error.retry_after {
                self.retry_floor = Some(after);
            }
            return self.deliver(Item::ServerError(error)).await;
        }
        match self.take(id) {
            Some(Pending::Subscribe {
                topic, reply: None, ..
            }) => {
                tracing::warn!(%topic, code = %error.code, "the server refused to restore a subscription");
                self.topics.remove(&topic);
                self.deliver(Item::SubscriptionLost { topic, error })
                    .await?;
            }
            Some(pending) => pending.fail(Error::Server(error)),
            None => tracing::warn!(code = %error.code, "an error for no request in flight"),
        }
        ControlFlow::Continue(())
    }

    /// Handles the server's close frame.
    async fn on_close(&mut self, frame: Option<CloseFrame>) -> End {
        let (code, reason) = match frame {
            Some(frame) => (u16::from(frame.code), frame.reason.to_string()),
            None => (1005, String::new()),
        };
        match code {
            CLOSE_UNAUTHORIZED => End::Unauthorized(format!("close {code}: {reason}")),
            CLOSE_RESYNC => match self.resync(&reason).await {
                Ok(()) => End::Lost(format!("close {code} (resync required): {reason}")),
                Err(Gone) => End::Stop,
            },
            _ => End::Lost(format!("closed by the server: {code} {reason}")),
        }
    }

    /// Close 4011: a subscription's offset is gone from the server's
    /// history. The topic is the one the reason names; failing that, those
    /// being subscribed from an offset; failing that, all of them. Each
    /// resumes from nothing, and the application hears about it.
    async fn resync(&mut self, reason: &str) -> Result<(), Gone> {
        let in_flight: Vec<(u64, String)> = self
            .pending
            .iter()
            .filter_map(|(id, pending)| match pending {
                Pending::Subscribe {
                    topic,
                    since: Some(_),
                    ..
                } => Some((*id, topic.clone())),
                _ => None,
            })
            .collect();
        let named = |topic: &String| {
            reason
                .split(|c: char| {
                    c.is_whitespace() || matches!(c, ',' | ';' | '"' | '\'' | '(' | ')')
                })
                .any(|word| word == topic)
        };
        let mut topics: Vec<String> = self.topics.names().into_iter().filter(named).collect();
        topics.extend(in_flight.iter().map(|(_, t)| t.clone()).filter(named));
        if topics.is_empty() {
            topics = in_flight.iter().map(|(_, t)| t.clone()).collect();
        }
        if topics.is_empty() {
            topics = self.topics.names();
        }
        topics.sort();
        topics.dedup();
        for (id, topic) in &in_flight {
            if topics.contains(topic)
                && let Some(pending) = self.pending.remove(id)
            {
                pending.fail(Error::ResyncRequired {
                    topic: topic.clone(),
                });
            }
        }
        for topic in topics {
            if self.topics.contains(&topic) {
                tracing::info!(%topic, "resync required");
                self.topics.reset(&topic);
                if self.items.send(Item::Resync { topic }).await.is_err() {
                    return Err(Gone);
                }
            }
        }
        Ok(())
    }

    /// Sleeps before a reconnection. Requests made meanwhile fail with
    /// [`Error::Disconnected`]. `Err` if the application is gone.
    async fn wait(&mut self, delay: Duration) -> Result<(), Gone> {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return Ok(()),
                () = self.items.closed() => return Err(Gone),
                command = self.commands.recv() => match command {
                    None | Some(Command::Close) => return Err(Gone),
                    Some(command) => command.fail(Error::Disconnected),
                },
            }
        }
    }

    async fn deliver(&self, item: Item) -> ControlFlow<Gone> {
        match self.items.send(item).await {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(Gone),
        }
    }

    /// Reports a terminal error; the task ends after it.
    async fn finish(&self, error: Error) {
        tracing::warn!(%error, "client stopped");
        drop(self.items.send(Item::Closed(error)).await);
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn take(&mut self, id: &serde_json::Value) -> Option<Pending> {
        protocol::request_id(id).and_then(|id| self.pending.remove(&id))
    }
}
