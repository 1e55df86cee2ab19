//! A [`Shard`]: the fan-out of one worker thread. It holds the
//! subscriptions of the thread's connections, and one task on that thread
//! writes each event the hub offers straight into each subscriber's send
//! queue. A delivery never crosses a thread, never wakes another thread,
//! and never passes through an actor's mailbox (which would poll every
//! timer and stream of the actor per event).

use super::event::HubEvent;
use super::lock;
use super::subscription::{Control, Delivered, Subscription};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// Events a shard's queue holds before the shard counts as lagging (and
/// its subscriptions catch up from the log).
pub(super) const SHARD_QUEUE: usize = 4096;
/// Events a shard takes from its queue at once.
const SHARD_BATCH: usize = 64;
/// Deliveries after which a shard lets its thread's other tasks (the
/// connections' HTTP dispatchers, which write the frames) run.
const SHARD_YIELD_AFTER: usize = 4096;

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
    /// A shard whose queue holds `queue` events, and its task, spawned on
    /// the calling thread (inside its runtime).
    pub(super) fn start(queue: usize) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(queue);
        let shard = Arc::new(Shard {
            tx,
            lagged: AtomicBool::new(false),
            wake: Notify::new(),
            topics: Mutex::default(),
        });
        actix_rt::spawn(tokio::task::unconstrained(run_shard(shard.clone(), rx)));
        shard
    }

    /// The shard's task is gone (its thread stopped).
    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

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

    /// A topic is gone: its subscribers here are told and forgotten.
    pub(super) fn drop_topic(&self, topic: &str) {
        let subscribers = lock(&self.topics).remove(topic);
        for sub in subscribers.into_iter().flat_map(HashMap::into_values) {
            sub.addr().do_send(Control::TopicGone(topic.to_owned()));
        }
    }

    /// Queues an event for the shard's task; answers false when the task
    /// is gone (its thread stopped).
    pub(super) fn offer(&self, event: &Arc<HubEvent>) -> bool {
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
    pub(super) fn lag(&self) {
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

    /// Test view: no topic has a subscriber here.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        lock(&self.topics).is_empty()
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
