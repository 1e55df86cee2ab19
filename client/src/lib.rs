//! A WebSocket client for tgvisor's event and send API
//! (`GET /ws`), for applications that drive Telegram accounts through it.
//!
//! ```no_run
//! use tgvisor_client::{Client, Config, Item};
//!
//! # async fn demo() -> Result<(), tgvisor_client::Error> {
//! let mut client = Client::connect(Config::new("ws://127.0.0.1:8080/ws", "my-token")).await?;
//! client.subscribe("account:7", None).await?;
//! while let Some(item) = client.next().await {
//!     match item {
//!         Item::Event(event) => println!("{} #{}: {}", event.topic, event.offset, event.kind),
//!         Item::Resync { topic } => println!("refetch the state of {topic}"),
//!         Item::Closed(error) => return Err(error),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Recovery guarantees
//!
//! One background task owns the socket. When the connection drops (the
//! server restarts, the network fails, the server closes with 1001, 4008,
//! 4009 or 4010) it:
//!
//! 1. fails every request in flight with [`Error::Disconnected`] (a `send`
//!    is safe to repeat with the same idempotency key);
//! 2. reconnects with exponential backoff ([`Backoff`]: 5 attempts from 1 s by
//!    default, honouring a `retry_after_ms` the server sent), authenticating
//!    each upgrade with `Authorization: Bearer` (the token never goes in the
//!    URL, nor in logs);
//! 3. yields [`Item::Reconnected`] and resubscribes every topic from where the
//!    application is: the offset of the last event delivered (or the topic's
//!    offset when the subscription began, if later), so events published
//!    while the connection was down are replayed;
//! 4. drops every event at or below the last delivered offset of its topic.
//!
//! So, per topic, the application sees each event once and in offset order,
//! with no gap, across any number of reconnections, with two exceptions it
//! is told about:
//!
//! - the server no longer has the history to fill the gap (close 4011, or a
//!   subscription answered `recovered: false`): the client yields
//!   [`Item::Resync`] for the topic and carries on from the server's current
//!   position; the application must refetch the topic's state;
//! - the client stops for good, yielding [`Item::Closed`]: on
//!   [`Error::Unauthorized`] (close 4001 or a 401/403 upgrade: the token
//!   expired or was revoked; never retried) or [`Error::RetriesExhausted`].
//!
//! The first connection, in [`Client::connect`], is tried once; backoff
//! applies to reconnections.
//!
//! The [`Item`] channel is bounded ([`Config::buffer`]): an application that
//! stops reading stops the client reading the socket too. Offsets in
//! [`Client::offsets`] advance only as items enter that channel.

mod client;
mod config;
mod connect;
mod error;
mod protocol;
mod requests;
mod task;
mod topics;

pub use client::{Client, Handle, Item};
pub use config::{Backoff, Config, Token};
pub use error::{Error, ServerError};
pub use protocol::{Ack, Event, SendFrame, Subscription};
