//! The WsHub: who is connected, who listens to which topic, and how a
//! committed event reaches them.
//!
//! - Each event is serialized once; every subscriber gets the same bytes.
//! - Fan-out is sharded by thread. Every worker thread that holds
//!   connections has a [`Shard`]: the subscriptions of its connections and
//!   one task on that thread that hands them events. The pump gives each
//!   event to each shard once; the shard writes it straight into each
//!   subscriber's send queue. A delivery never crosses a thread, never
//!   wakes another thread, and never passes through an actor's mailbox
//!   (which would poll every timer and stream of the actor per event): one
//!   event to 10 000 connections costs two cross-thread wake-ups, not
//!   10 000, and the threads share the work.
//! - A subscriber whose send queue is full is told it is a slow consumer
//!   (it closes with 4010) instead of the shard waiting for it or growing
//!   memory.
//! - The pump ([`pump`]) reads the event log's live bus. When it
//!   falls behind the bus (the bus drops what a lagging reader missed),
//!   when a shard's queue is full, or when the pump's actor was restarted,
//!   it cannot know what was missed: the shards switch their subscriptions
//!   to reading the durable log from each one's last offset before handing
//!   out anything newer. Nothing is lost either way; clients drop what they
//!   already have.
//!
//! The hub knows each connection only as the [`Control`] messages it can
//! be sent, so it does not depend on the connection's actor.

mod pump;

pub use pump::{WsHubActor, pump};

use super::event::HubEvent;
use super::lock;
use super::shard::{SHARD_QUEUE, Shard};
use super::subscription::Control;
use crate::config::WsConnections;
use crate::events::StoredEvent;
use crate::metrics::ws::WsMetrics;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

/// Why a connection may not be admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The service is shutting down.
    ShuttingDown,
    /// `rate_limits.websocket.connections.total` are open.
    Total,
    /// The user has `rate_limits.websocket.connections.per_user` open.
    PerUser,
    /// The address has `websocket.unauthenticated_per_ip` connections
    /// waiting to authenticate.
    PerAddress,
}

#[derive(Default)]
struct Connections {
    /// Every open connection's actor (for shutdown).
    clients: HashMap<u64, Recipient<Control>>,
    /// Authenticated connections per user.
    per_user: HashMap<i64, u32>,
    /// Connections not authenticated yet, per client address.
    unauthenticated: HashMap<std::net::IpAddr, u32>,
}

/// Shared by the route, the clients and the pump; cheap to clone.
#[derive(Clone)]
pub struct WsHub {
    inner: Arc<Inner>,
}

struct Inner {
    limits: WsConnections,
    next_id: AtomicU64,
    connections: Mutex<Connections>,
    /// One shard per thread that holds connections.
    shards: Mutex<HashMap<ThreadId, Arc<Shard>>>,
    metrics: WsMetrics,
    shutting_down: AtomicBool,
    /// Events a shard's queue holds.
    fanout_queue: usize,
}

impl WsHub {
    pub fn new(limits: WsConnections, metrics: WsMetrics) -> Self {
        Self::with_fanout_queue(limits, metrics, SHARD_QUEUE)
    }

    fn with_fanout_queue(limits: WsConnections, metrics: WsMetrics, fanout_queue: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                next_id: AtomicU64::new(1),
                connections: Mutex::default(),
                shards: Mutex::default(),
                metrics,
                shutting_down: AtomicBool::new(false),
                fanout_queue: fanout_queue.max(1),
            }),
        }
    }

    pub fn metrics(&self) -> &WsMetrics {
        &self.inner.metrics
    }

    /// A new connection's id.
    pub fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The shard of the calling thread (started on first use; call it from
    /// the thread whose connections it serves, inside its runtime).
    pub fn shard(&self) -> Arc<Shard> {
        let mut shards = lock(&self.inner.shards);
        let thread = std::thread::current().id();
        if let Some(shard) = shards.get(&thread)
            && !shard.is_closed()
        {
            return shard.clone();
        }
        let shard = Shard::start(self.inner.fanout_queue);
        shards.insert(thread, shard.clone());
        shard
    }

    /// Registers a started connection (counted against the total).
    pub fn register(&self, id: u64, addr: Recipient<Control>) -> Result<(), Refused> {
        let mut conns = lock(&self.inner.connections);
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(Refused::ShuttingDown);
        }
        if conns.clients.len() >= self.inner.limits.total as usize {
            return Err(Refused::Total);
        }
        conns.clients.insert(id, addr);
        self.inner
            .metrics
            .connections
            .set(conns.clients.len() as i64);
        Ok(())
    }

    /// Counts a connection that has yet to authenticate against its
    /// address's limit.
    pub fn admit_unauthenticated(&self, ip: std::net::IpAddr, limit: u32) -> Result<(), Refused> {
        let mut conns = lock(&self.inner.connections);
        let n = conns.unauthenticated.entry(ip).or_default();
        if *n >= limit {
            return Err(Refused::PerAddress);
        }
        *n += 1;
        Ok(())
    }

    /// The connection authenticated, or ended, before it did.
    pub fn release_unauthenticated(&self, ip: std::net::IpAddr) {
        let mut conns = lock(&self.inner.connections);
        if let Some(n) = conns.unauthenticated.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                conns.unauthenticated.remove(&ip);
            }
        }
    }

    /// Counts an authenticated connection against its user's limit.
    pub fn admit_user(&self, user_id: i64) -> Result<(), Refused> {
        let mut conns = lock(&self.inner.connections);
        let n = conns.per_user.entry(user_id).or_default();
        if *n >= self.inner.limits.per_user {
            return Err(Refused::PerUser);
        }
        *n += 1;
        Ok(())
    }

    /// A connection ended: its slots go (its subscriptions are its
    /// shard's to drop).
    pub fn release(&self, id: u64, user_id: Option<i64>) {
        let mut conns = lock(&self.inner.connections);
        if conns.clients.remove(&id).is_some() {
            self.inner
                .metrics
                .connections
                .set(conns.clients.len() as i64);
        }
        if let Some(user) = user_id
            && let Some(n) = conns.per_user.get_mut(&user)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                conns.per_user.remove(&user);
            }
        }
    }

    /// A topic is gone (its account was removed): its subscribers are told
    /// and forgotten.
    pub fn drop_topic(&self, topic: &str) {
        for shard in self.shards() {
            shard.drop_topic(topic);
        }
    }

    /// Hands a committed event to every shard (each knows its own
    /// subscribers of the topic).
    pub fn dispatch(&self, event: &StoredEvent) {
        let shards = self.shards();
        if shards.is_empty() {
            return;
        }
        let event = Arc::new(HubEvent::new(event));
        let mut gone = false;
        for shard in &shards {
            gone |= !shard.offer(&event);
        }
        if gone {
            // A stopped thread's shard; its connections went with it.
            lock(&self.inner.shards).retain(|_, s| !s.is_closed());
        }
    }

    /// Every subscription reads what it may have missed from the log.
    pub fn catch_up_all(&self) {
        for shard in self.shards() {
            shard.lag();
        }
    }

    /// Closes every connection with 1001 (going away), and refuses new
    /// ones from now on; answers how many were open.
    pub fn shutdown_all(&self) -> usize {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let clients: Vec<Recipient<Control>> = lock(&self.inner.connections)
            .clients
            .values()
            .cloned()
            .collect();
        for addr in &clients {
            addr.do_send(Control::Shutdown);
        }
        clients.len()
    }

    fn shards(&self) -> Vec<Arc<Shard>> {
        lock(&self.inner.shards).values().cloned().collect()
    }
}

#[cfg(test)]
#[path = "fanout_tests.rs"]
mod tests;
