//! The WsHub: who is connected, who listens to which topic, and the pump
//! that fans committed events out to them.
//!
//! - Each event is serialized once; every subscriber gets the same bytes.
//! - A subscriber whose mailbox is full is told it is a slow consumer (it
//!   closes with 4010) instead of the hub waiting for it or growing memory.
//! - The pump reads the event log's live bus. When it falls behind the bus
//!   (the bus drops what a lagging reader missed), or when its actor was
//!   restarted, it cannot know what it missed: it tells every client to
//!   catch up from the durable log, from each subscription's last offset.
//!   Nothing is lost either way; clients drop what they already have.

use super::client::{Control, Deliver, WsClient};
use super::metrics::WsMetrics;
use crate::config::WsConnections;
use crate::events::{EventLog, StoredEvent};
use actix::prelude::*;
use bytestring::ByteString;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;

/// A committed event as the hub hands it out: its frame, serialized once.
#[derive(Debug)]
pub struct HubEvent {
    pub topic: String,
    pub offset: i64,
    pub frame: ByteString,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl HubEvent {
    pub fn new(e: &StoredEvent) -> Self {
        Self {
            topic: e.topic.clone(),
            offset: e.offset,
            frame: super::frames::event_frame(e).into(),
            created_at: e.created_at.with_timezone(&chrono::Utc),
        }
    }
}

/// A client as the hub reaches it: its address and how many deliveries
/// sit in its mailbox. (actix's own mailbox bound does not hold for
/// messages sent through a clone of an address, so the hub counts.)
#[derive(Clone)]
pub struct ClientHandle {
    pub addr: Addr<WsClient>,
    pub inflight: Arc<AtomicUsize>,
}

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
    /// Every open connection's address (for shutdown and catch-up).
    clients: HashMap<u64, Addr<WsClient>>,
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
    topics: Mutex<HashMap<String, HashMap<u64, ClientHandle>>>,
    metrics: WsMetrics,
    /// Deliveries a client's mailbox may hold before it is a slow consumer.
    mailbox: usize,
    shutting_down: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WsHub {
    pub fn new(limits: WsConnections, mailbox: usize, metrics: WsMetrics) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                next_id: AtomicU64::new(1),
                connections: Mutex::default(),
                topics: Mutex::default(),
                metrics,
                mailbox: mailbox.max(1),
                shutting_down: AtomicBool::new(false),
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

    /// Registers a started connection (counted against the total).
    pub fn register(&self, id: u64, addr: Addr<WsClient>) -> Result<(), Refused> {
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

    /// A connection ended: its slots and subscriptions go.
    pub fn release(&self, id: u64, user_id: Option<i64>, topics: impl Iterator<Item = String>) {
        {
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
        for topic in topics {
            self.unsubscribe(&topic, id);
        }
    }

    /// From now on, `topic`'s events go to `addr` too.
    pub fn subscribe(&self, topic: &str, id: u64, client: ClientHandle) {
        lock(&self.inner.topics)
            .entry(topic.to_owned())
            .or_default()
            .insert(id, client);
    }

    pub fn unsubscribe(&self, topic: &str, id: u64) {
        let mut topics = lock(&self.inner.topics);
        if let Some(subs) = topics.get_mut(topic) {
            subs.remove(&id);
            if subs.is_empty() {
                topics.remove(topic);
            }
        }
    }

    /// A topic is gone (its account was removed): its subscribers are told
    /// and forgotten.
    pub fn drop_topic(&self, topic: &str) {
        let subscribers = lock(&self.inner.topics).remove(topic);
        for client in subscribers.into_iter().flat_map(HashMap::into_values) {
            client
                .addr
                .do_send(super::client::TopicGone(topic.to_owned()));
        }
    }

    /// Hands a committed event to its topic's subscribers.
    pub fn dispatch(&self, event: &StoredEvent) {
        let subscribers: Vec<(u64, ClientHandle)> = match lock(&self.inner.topics).get(&event.topic)
        {
            Some(subs) => subs.iter().map(|(id, c)| (*id, c.clone())).collect(),
            None => return,
        };
        let event = Arc::new(HubEvent::new(event));
        for (id, client) in subscribers {
            if client.inflight.fetch_add(1, Ordering::AcqRel) >= self.inner.mailbox {
                client.inflight.fetch_sub(1, Ordering::AcqRel);
                client.addr.do_send(Control::SlowConsumer);
                continue;
            }
            if client.addr.try_send(Deliver(event.clone())).is_err() {
                // Stopped (a full mailbox cannot happen: counted above).
                client.inflight.fetch_sub(1, Ordering::AcqRel);
                self.unsubscribe(&event.topic, id);
            }
        }
    }

    /// Every client reads what it may have missed from the log.
    pub fn catch_up_all(&self) {
        for addr in self.clients() {
            addr.do_send(Control::CatchUp);
        }
    }

    /// Closes every connection with 1001 (going away), and refuses new
    /// ones from now on; answers how many were open.
    pub fn shutdown_all(&self) -> usize {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let clients = self.clients();
        for addr in &clients {
            addr.do_send(Control::Shutdown);
        }
        clients.len()
    }

    fn clients(&self) -> Vec<Addr<WsClient>> {
        lock(&self.inner.connections)
            .clients
            .values()
            .cloned()
            .collect()
    }
}

/// Feeds the hub from the event log's live bus.
pub async fn pump(hub: WsHub, mut rx: broadcast::Receiver<StoredEvent>) {
    loop {
        match rx.recv().await {
            Ok(event) => hub.dispatch(&event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "ws hub fell behind the event bus; clients catch up from the log"
                );
                hub.catch_up_all();
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The supervised actor running the pump (root child `ws-hub`).
pub struct WsHubActor {
    hub: WsHub,
    events: EventLog,
    health: super::health::WsHealth,
    retention: crate::config::EventSettings,
}

impl WsHubActor {
    pub fn new(
        hub: WsHub,
        events: EventLog,
        health: super::health::WsHealth,
        retention: crate::config::EventSettings,
    ) -> Self {
        Self {
            hub,
            events,
            health,
            retention,
        }
    }

    /// Prunes the event log to `events.retention_*`.
    fn prune(&self, ctx: &mut Context<Self>) {
        let db = self.events.db().clone();
        let age = std::time::Duration::from_millis(self.retention.retention_max_age_ms);
        let per_topic = self.retention.retention_max_per_topic;
        ctx.spawn(actix::fut::wrap_future(async move {
            match crate::events::prune(&db, age, per_topic).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "event log pruned"),
                Err(e) => tracing::warn!(error = %e, "pruning the event log failed"),
            }
        }));
    }
}

impl Actor for WsHubActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let rx = self.events.subscribe();
        // A restarted pump missed what was published while it was down.
        self.hub.catch_up_all();
        ctx.spawn(actix::fut::wrap_future(pump(self.hub.clone(), rx)));
        ctx.run_interval(super::health::SAMPLE_EVERY, |act, _| act.health.sample());
        let every = std::time::Duration::from_millis(self.retention.prune_interval_ms.max(1000));
        ctx.run_interval(every, |act, ctx| act.prune(ctx));
    }
}
