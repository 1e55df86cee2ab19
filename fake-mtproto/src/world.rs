//! Per-account state: the ONE sim connection the fake keeps for an auth key
//! (opened on first use, reopened when the sim drops it, kept while grammers
//! is disconnected so updates keep arriving), and the account's update log
//! with its `pts` counter, which feeds live updates, `updates.getState` and
//! `updates.getDifference`.

use crate::convert;
use crate::server::Out;
use grammers_tl_types as tl;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tgvisor::sessions::SessionData;
use tgvisor::telegram::sim::{SimBackend, SimWorld};
use tgvisor::telegram::{Backend, Client, Incoming, Message, SessionSink, TgError, Update};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many log entries one `updates.getDifference` answer carries at most
/// (more come as `updates.differenceSlice`).
const DIFFERENCE_LIMIT: usize = 100;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Session changes of the sim connection go nowhere: the fake's session is
/// rebuilt from the world's keys.
struct NoopSink;

#[async_trait::async_trait]
impl SessionSink for NoopSink {
    async fn save(&self, _data: &SessionData) -> anyhow::Result<()> {
        Ok(())
    }
}

/// One change in the account, in pts order.
#[derive(Clone, Debug)]
enum Change {
    New(Message),
    Edited(Message),
    Deleted(Vec<i32>),
}

#[derive(Clone, Debug)]
struct Entry {
    pts: i32,
    pts_count: i32,
    change: Change,
}

#[derive(Default)]
struct Log {
    pts: i32,
    entries: Vec<Entry>,
    /// Message id → the pts its `updateNewMessage` took.
    new_message_pts: HashMap<i32, i32>,
}

impl Log {
    /// Appends a change; `None` for a message already logged (a resend
    /// answered from Telegram's random_id cache).
    fn append(&mut self, change: Change) -> Option<Entry> {
        let pts_count = match &change {
            Change::New(m) if self.new_message_pts.contains_key(&m.id) => return None,
            Change::New(_) | Change::Edited(_) => 1,
            Change::Deleted(ids) if ids.is_empty() => return None,
            Change::Deleted(ids) => i32::try_from(ids.len()).unwrap_or(i32::MAX),
        };
        self.pts += pts_count;
        if let Change::New(m) = &change {
            self.new_message_pts.insert(m.id, self.pts);
        }
        let entry = Entry {
            pts: self.pts,
            pts_count,
            change,
        };
        self.entries.push(entry.clone());
        Some(entry)
    }
}

/// The update side of an account: its log and its open TCP connections.
pub(crate) struct Feed {
    user_id: i64,
    dc: i32,
    world: SimWorld,
    log: Mutex<Log>,
    conns: Mutex<HashMap<u64, mpsc::UnboundedSender<Out>>>,
    /// Held across a send and its logging, so that the echo a send causes
    /// is logged after the sent message.
    order: tokio::sync::Mutex<()>,
}

impl Feed {
    fn users(&self, ids: impl IntoIterator<Item = i64>) -> Vec<tl::enums::User> {
        let mut seen = HashSet::new();
        std::iter::once(self.user_id)
            .chain(ids)
            .filter(|id| seen.insert(*id))
            .filter_map(|id| self.world.profile(id))
            .map(|p| convert::user_from_me(&p, p.id == self.user_id))
            .collect()
    }

    pub(crate) fn users_for(&self, messages: &[&Message]) -> Vec<tl::enums::User> {
        self.users(
            messages
                .iter()
                .flat_map(|m| std::iter::once(m.chat_id).chain(m.sender_id)),
        )
    }

    fn tl_update(&self, entry: &Entry) -> tl::enums::Update {
        let (pts, pts_count) = (entry.pts, entry.pts_count);
        match &entry.change {
            Change::New(m) => tl::types::UpdateNewMessage {
                message: convert::message(m, self.dc),
                pts,
                pts_count,
            }
            .into(),
            Change::Edited(m) => tl::types::UpdateEditMessage {
                message: convert::message(m, self.dc),
                pts,
                pts_count,
            }
            .into(),
            Change::Deleted(ids) => tl::types::UpdateDeleteMessages {
                messages: ids.clone(),
                pts,
                pts_count,
            }
            .into(),
        }
    }

    fn entry_messages(entries: &[Entry]) -> Vec<&Message> {
        entries
            .iter()
            .filter_map(|e| match &e.change {
                Change::New(m) | Change::Edited(m) => Some(m),
                Change::Deleted(_) => None,
            })
            .collect()
    }

    /// `updates` carrying these log entries (and `extra` updates first).
    fn updates(&self, extra: Vec<tl::enums::Update>, entries: &[Entry]) -> tl::enums::Updates {
        let mut updates = extra;
        updates.extend(entries.iter().map(|e| self.tl_update(e)));
        tl::types::Updates {
            updates,
            users: self.users_for(&Self::entry_messages(entries)),
            chats: Vec::new(),
            date: convert::now(),
            seq: 0,
        }
        .into()
    }

    /// Pushes serialized `Updates` to the account's connections but `except`.
    fn push(&self, updates: &tl::enums::Updates, except: Option<u64>) {
        let body = tl::Serializable::to_bytes(updates);
        for (id, tx) in lock(&self.conns).iter() {
            if Some(*id) != except {
                let _ = tx.send(Out::update(body.clone()));
            }
        }
    }

    /// Logs what the sim pushed and forwards it live.
    async fn record_sim_update(&self, update: Update) {
        let change = match update {
            Update::NewMessage(m) => Change::New(m),
            Update::MessageEdited(m) => Change::Edited(m),
            Update::MessagesDeleted { ids, .. } => Change::Deleted(ids),
        };
        let _order = self.order.lock().await;
        let entry = lock(&self.log).append(change);
        if let Some(entry) = entry {
            self.push(&self.updates(Vec::new(), &[entry]), None);
        }
    }

    /// Logs a message the account sent (unless the sim answered a resend
    /// with the original) and tells the account's other connections; returns
    /// the answer for the sending connection: `updateMessageID` +
    /// `updateNewMessage`.
    pub(crate) fn record_sent(
        &self,
        message: &Message,
        random_id: i64,
        conn_id: u64,
    ) -> tl::enums::Updates {
        let (entry, fresh) = {
            let mut log = lock(&self.log);
            match log.append(Change::New(message.clone())) {
                Some(entry) => (entry, true),
                None => {
                    let pts = log.new_message_pts.get(&message.id).copied().unwrap_or(0);
                    let entry = Entry {
                        pts,
                        pts_count: 1,
                        change: Change::New(message.clone()),
                    };
                    (entry, false)
                }
            }
        };
        let entries = [entry];
        if fresh {
            self.push(&self.updates(Vec::new(), &entries), Some(conn_id));
        }
        let id = tl::types::UpdateMessageId {
            id: message.id,
            random_id,
        };
        self.updates(vec![id.into()], &entries)
    }

    pub(crate) fn state(&self) -> tl::enums::updates::State {
        tl::types::updates::State {
            pts: lock(&self.log).pts,
            qts: 0,
            date: convert::now(),
            seq: 0,
            unread_count: 0,
        }
        .into()
    }

    /// What happened after `pts`.
    pub(crate) fn difference(&self, pts: i32) -> tl::enums::updates::Difference {
        let log = lock(&self.log);
        if pts > log.pts {
            // The client knows a pts this server never handed out (another
            // server instance): make it adopt ours.
            return tl::types::updates::DifferenceTooLong { pts: log.pts }.into();
        }
        let start = log.entries.partition_point(|e| e.pts <= pts);
        let pending = &log.entries[start..];
        if pending.is_empty() {
            return tl::types::updates::DifferenceEmpty {
                date: convert::now(),
                seq: 0,
            }
            .into();
        }
        let page = &pending[..pending.len().min(DIFFERENCE_LIMIT)];
        let last_pts = page.last().map_or(log.pts, |e| e.pts);
        let state = tl::types::updates::State {
            pts: last_pts,
            qts: 0,
            date: convert::now(),
            seq: 0,
            unread_count: 0,
        }
        .into();
        let mut new_messages = Vec::new();
        let mut other_updates = Vec::new();
        for entry in page {
            match &entry.change {
                Change::New(m) => new_messages.push(convert::message(m, self.dc)),
                _ => other_updates.push(self.tl_update(entry)),
            }
        }
        let users = self.users_for(&Self::entry_messages(page));
        if page.len() < pending.len() {
            tl::types::updates::DifferenceSlice {
                new_messages,
                new_encrypted_messages: Vec::new(),
                other_updates,
                chats: Vec::new(),
                users,
                intermediate_state: state,
            }
            .into()
        } else {
            tl::types::updates::Difference {
                new_messages,
                new_encrypted_messages: Vec::new(),
                other_updates,
                chats: Vec::new(),
                users,
                state,
            }
            .into()
        }
    }

    pub(crate) fn register(&self, conn_id: u64, tx: mpsc::UnboundedSender<Out>) {
        lock(&self.conns).insert(conn_id, tx);
    }

    pub(crate) fn unregister(&self, conn_id: u64) {
        lock(&self.conns).remove(&conn_id);
    }

    /// Closes the account's TCP connections (the sim's network went down).
    fn close_connections(&self) {
        for tx in lock(&self.conns).values() {
            let _ = tx.send(Out::Close);
        }
    }

    /// Serializes sends with the logging of what they cause.
    pub(crate) async fn order(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.order.lock().await
    }
}

struct SimConn {
    client: Arc<dyn Client>,
    /// Set when the sim dropped the connection (its `closed` resolved).
    dead: Arc<AtomicBool>,
    forwarder: JoinHandle<()>,
}

/// Everything the fake keeps for one auth key.
pub(crate) struct Account {
    pub(crate) user_id: i64,
    pub(crate) dc: i32,
    session: SessionData,
    world: SimWorld,
    sim: tokio::sync::Mutex<Option<SimConn>>,
    /// Set by [`Account::close`]: no sim connection is opened any more.
    closed: AtomicBool,
    pub(crate) feed: Arc<Feed>,
    /// File id → part → size, for the sizes `sendMedia` must report to the sim.
    uploads: Mutex<HashMap<i64, BTreeMap<u32, usize>>>,
}

impl Account {
    pub(crate) fn new(world: SimWorld, session: SessionData, user_id: i64, dc: i32) -> Self {
        Self {
            user_id,
            dc,
            session,
            feed: Arc::new(Feed {
                user_id,
                dc,
                world: world.clone(),
                log: Mutex::new(Log::default()),
                conns: Mutex::new(HashMap::new()),
                order: tokio::sync::Mutex::new(()),
            }),
            world,
            sim: tokio::sync::Mutex::new(None),
            closed: AtomicBool::new(false),
            uploads: Mutex::new(HashMap::new()),
        }
    }

    /// The account's sim connection, (re)opened if needed.
    pub(crate) async fn client(&self) -> Result<Arc<dyn Client>, TgError> {
        let mut sim = self.sim.lock().await;
        if self.closed.load(Ordering::SeqCst) {
            return Err(TgError::Network("the fake server shut down".into()));
        }
        if let Some(conn) = sim.as_ref()
            && !conn.dead.load(Ordering::SeqCst)
        {
            return Ok(conn.client.clone());
        }
        if let Some(old) = sim.take() {
            // Unregisters it in the world at once (in-flight calls may still
            // hold the client); its forwarder drains what was pushed to it.
            old.client.disconnect().await;
            let _ = old.forwarder.await;
        }
        let backend = SimBackend::new(self.world.clone());
        let conn = backend
            .connect(self.session.clone(), None, Arc::new(NoopSink))
            .await?;
        let dead = Arc::new(AtomicBool::new(false));
        let forwarder = tokio::spawn(forward(
            conn.updates,
            conn.closed,
            dead.clone(),
            self.feed.clone(),
        ));
        *sim = Some(SimConn {
            client: conn.client.clone(),
            dead,
            forwarder,
        });
        Ok(conn.client)
    }

    /// A sim call failed with a network error: the sim may have dropped the
    /// connection, so the next call opens a new one (without waiting for
    /// the forwarder to notice).
    pub(crate) async fn network_failed(&self) {
        if let Some(conn) = self.sim.lock().await.as_ref() {
            conn.dead.store(true, Ordering::SeqCst);
        }
    }

    /// Closes the sim connection (server shutdown).
    pub(crate) async fn close(&self) {
        let mut sim = self.sim.lock().await;
        self.closed.store(true, Ordering::SeqCst);
        if let Some(conn) = sim.take() {
            conn.client.disconnect().await;
            conn.forwarder.abort();
        }
    }

    pub(crate) fn record_part(&self, file_id: i64, part: u32, size: usize) {
        lock(&self.uploads)
            .entry(file_id)
            .or_default()
            .insert(part, size);
    }

    /// Bytes uploaded so far for a file.
    pub(crate) fn uploaded_size(&self, file_id: i64) -> u64 {
        lock(&self.uploads)
            .get(&file_id)
            .map_or(0, |parts| parts.values().map(|n| *n as u64).sum())
    }
}

/// Moves the sim's updates into the account's log until the sim connection
/// is gone (its channel closes once the client is disconnected or dropped).
async fn forward(
    mut updates: mpsc::Receiver<Incoming>,
    mut closed: std::pin::Pin<Box<dyn Future<Output = TgError> + Send>>,
    dead: Arc<AtomicBool>,
    feed: Arc<Feed>,
) {
    let mut closed_done = false;
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Some(Incoming { update: Some(update), .. }) => feed.record_sim_update(update).await,
                Some(_) => {}
                None => break,
            },
            reason = &mut closed, if !closed_done => {
                closed_done = true;
                tracing::debug!(%reason, "the sim dropped an account's connection");
                dead.store(true, Ordering::SeqCst);
                // A network failure in the sim is one for the client too; a
                // revocation is not (the next call gets a 401 instead).
                if matches!(reason, TgError::Network(_)) {
                    feed.close_connections();
                }
            }
        }
    }
    dead.store(true, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: i32) -> Message {
        Message {
            id,
            chat_id: 7,
            sender_id: Some(7),
            outgoing: false,
            text: format!("m{id}"),
            date: chrono::Utc::now(),
            reply_to: None,
            edit_date: None,
            media: None,
        }
    }

    #[test]
    fn the_log_counts_pts_and_skips_messages_already_logged() {
        let mut log = Log::default();
        assert_eq!(log.append(Change::New(msg(1))).map(|e| e.pts), Some(1));
        assert_eq!(log.append(Change::New(msg(2))).map(|e| e.pts), Some(2));
        assert!(log.append(Change::New(msg(1))).is_none());
        let deleted = log.append(Change::Deleted(vec![1, 2])).unwrap();
        assert_eq!((deleted.pts, deleted.pts_count), (4, 2));
        assert!(log.append(Change::Deleted(Vec::new())).is_none());
        assert_eq!(log.pts, 4);
    }

    #[test]
    fn differences_are_empty_sliced_or_too_long() {
        let feed = Feed {
            user_id: 7,
            dc: 2,
            world: SimWorld::default(),
            log: Mutex::new(Log::default()),
            conns: Mutex::new(HashMap::new()),
            order: tokio::sync::Mutex::new(()),
        };
        assert!(matches!(
            feed.difference(0),
            tl::enums::updates::Difference::Empty(_)
        ));
        for id in 1..=(DIFFERENCE_LIMIT as i32 + 5) {
            lock(&feed.log).append(Change::New(msg(id)));
        }
        match feed.difference(0) {
            tl::enums::updates::Difference::Slice(s) => {
                assert_eq!(s.new_messages.len(), DIFFERENCE_LIMIT);
                let tl::enums::updates::State::State(state) = s.intermediate_state;
                assert_eq!(state.pts, DIFFERENCE_LIMIT as i32);
            }
            other => panic!("expected a slice, got {other:?}"),
        }
        match feed.difference(DIFFERENCE_LIMIT as i32) {
            tl::enums::updates::Difference::Difference(d) => {
                assert_eq!(d.new_messages.len(), 5);
            }
            other => panic!("expected the rest, got {other:?}"),
        }
        assert!(matches!(
            feed.difference(1000),
            tl::enums::updates::Difference::TooLong(_)
        ));
    }
}
