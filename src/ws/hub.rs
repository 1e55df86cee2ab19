//! The WsHub: who is connected, who listens to which topic, and the pump
//! that fans committed events out to them.
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
//! - The pump reads the event log's live bus. When it falls behind the bus
//!   (the bus drops what a lagging reader missed), when a shard's queue is
//!   full, or when the pump's actor was restarted, it cannot know what was
//!   missed: the shards switch their subscriptions to reading the durable
//!   log from each one's last offset before handing out anything newer.
//!   Nothing is lost either way; clients drop what they already have.

use super::client::{Control, Delivered, Subscription, WsClient};
use crate::config::WsConnections;
use crate::events::{EventLog, StoredEvent};
use crate::metrics::ws::WsMetrics;
use actix::prelude::*;
use bytestring::ByteString;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;
use tokio::sync::{Notify, broadcast, mpsc};

/// Events a shard's queue holds before the shard counts as lagging (and
/// its subscriptions catch up from the log).
const SHARD_QUEUE: usize = 4096;
/// Events a shard takes from its queue at once.
const SHARD_BATCH: usize = 64;
/// Deliveries after which a shard lets its thread's other tasks (the
/// connections' HTTP dispatchers, which write the frames) run.
const SHARD_YIELD_AFTER: usize = 4096;

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
    /// Every open connection's address (for shutdown).
    clients: HashMap<u64, Addr<WsClient>>,
    /// Authenticated connections per user.
    per_user: HashMap<i64, u32>,
    /// Connections not authenticated yet, per client address.
    unauthenticated: HashMap<std::net::IpAddr, u32>,
}

/// The subscriptions of one thread's connections, and the queue of events
/// for the task on that thread that hands them out.
pub struct Shard {
    tx: mpsc::Sender<Arc<HubEvent>>,
    /// Events were dropped (a full queue) or the pump restarted: the
    /// subscriptions must read the log before anything newer is handed out.
    lagged: AtomicBool,
    /// Wakes the task when `lagged` is set while its queue is empty.
    wake: Notify,
    topics: Mutex<HashMap<String, HashMap<u64, Arc<Subscription>>>>,
}

impl Shard {
    /// From now on, `topic`'s events go to `sub` too.
    pub fn subscribe(&self, topic: &str, id: u64, sub: Arc<Subscription>) {
        lock(&self.topics)
            .entry(topic.to_owned())
            .or_default()
            .insert(id, sub);
    }

    pub fn unsubscribe(&self, topic: &str, id: u64) {
        let mut topics = lock(&self.topics);
        if let Some(subs) = topics.get_mut(topic) {
            subs.remove(&id);
            if subs.is_empty() {
                topics.remove(topic);
            }
        }
    }

    /// Queues an event for the shard's task; answers false when the task
    /// is gone (its thread stopped).
    fn offer(&self, event: &Arc<HubEvent>) -> bool {
        match self.tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lag();
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// What was offered may be incomplete: every subscription reads the
    /// log before it gets anything newer.
    fn lag(&self) {
        self.lagged.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Hands `event` to its topic's subscribers; answers how many, and
    /// whether some had to queue it behind a full session.
    fn deliver(&self, event: &Arc<HubEvent>) -> (usize, bool) {
        let mut topics = lock(&self.topics);
        let Some(subs) = topics.get_mut(&event.topic) else {
            return (0, false);
        };
        let mut backlog = false;
        let mut gone = Vec::new();
        for (id, sub) in subs.iter() {
            match sub.deliver(event) {
                Delivered::Sent => {}
                Delivered::Queued => backlog = true,
                Delivered::Gone => gone.push(*id),
            }
        }
        let n = subs.len();
        // Connections that ended without unsubscribing (an actor that
        // died): nothing keeps them here.
        for id in gone {
            subs.remove(&id);
        }
        if subs.is_empty() {
            topics.remove(&event.topic);
        }
        (n, backlog)
    }

    /// Switches every live subscription to reading the log, and asks each
    /// connection concerned to start reading.
    fn catch_up(&self) {
        let mut connections = HashSet::new();
        let topics = lock(&self.topics);
        for (id, sub) in topics.values().flat_map(HashMap::iter) {
            if sub.read_log() && connections.insert(*id) {
                sub.addr().do_send(Control::CatchUp);
            }
        }
    }
}

/// A shard's task: hands queued events to the shard's subscriptions.
///
/// It runs outside tokio's cooperative budget: within budget, every
/// subscriber after the first hundred or so would find its session "not
/// ready" (tokio's channels yield once a task spent its budget) and take
/// the detour through its writer task, a second wake-up per delivery. The
/// task yields on its own instead: after every batch, every
/// `SHARD_YIELD_AFTER` deliveries, and after any event that some
/// subscriber had to queue behind a full session, so the thread's HTTP
/// dispatchers write what the sessions hold before more comes (a burst on
/// a topic must not make a fast reader look like a slow consumer).
async fn run_shard(shard: Arc<Shard>, mut rx: mpsc::Receiver<Arc<HubEvent>>) {
    let mut batch = Vec::with_capacity(SHARD_BATCH);
    let mut since_yield = 0;
    loop {
        tokio::select! {
            // (The shard holds a sender itself: the queue ends only with
            // the runtime, which drops this task.)
            n = rx.recv_many(&mut batch, SHARD_BATCH) => if n == 0 {
                return;
            },
            () = shard.wake.notified() => {}
        }
        // Whatever is handed out after the switch is held back behind the
        // log reading, so the switch may come before events older than
        // what was dropped: never after anything newer.
        if shard.lagged.swap(false, Ordering::SeqCst) {
            shard.catch_up();
        }
        for event in batch.drain(..) {
            let (n, backlog) = shard.deliver(&event);
            since_yield += n;
            if backlog || since_yield >= SHARD_YIELD_AFTER {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
        since_yield = 0;
        tokio::task::yield_now().await;
    }
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
            && !shard.tx.is_closed()
        {
            return shard.clone();
        }
        let (tx, rx) = mpsc::channel(self.inner.fanout_queue);
        let shard = Arc::new(Shard {
            tx,
            lagged: AtomicBool::new(false),
            wake: Notify::new(),
            topics: Mutex::default(),
        });
        actix_rt::spawn(tokio::task::unconstrained(run_shard(shard.clone(), rx)));
        shards.insert(thread, shard.clone());
        shard
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
            let subscribers = lock(&shard.topics).remove(topic);
            for sub in subscribers.into_iter().flat_map(HashMap::into_values) {
                sub.addr().do_send(Control::TopicGone(topic.to_owned()));
            }
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
            lock(&self.inner.shards).retain(|_, s| !s.tx.is_closed());
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
        let clients: Vec<Addr<WsClient>> = lock(&self.inner.connections)
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
    health: crate::health::websocket::WsHealth,
    retention: crate::config::EventSettings,
}

impl WsHubActor {
    pub fn new(
        hub: WsHub,
        events: EventLog,
        health: crate::health::websocket::WsHealth,
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
        ctx.run_interval(crate::health::websocket::SAMPLE_EVERY, |act, _| {
            act.health.sample()
        });
        let every = std::time::Duration::from_millis(self.retention.prune_interval_ms.max(1000));
        ctx.run_interval(every, |act, ctx| act.prune(ctx));
    }
}

#[cfg(test)]
#[path = "fanout_tests.rs"]
mod tests;
