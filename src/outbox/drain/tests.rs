//! The drain on a paused clock: the simulated Telegram, the real rate
//! limiter, and an in-memory store that records every transition with the
//! (virtual) time it happened.

use super::*;
use crate::config::{Environment, Settings};
use crate::sessions::SessionData;
use crate::telegram::sim::{ECHO_USER_ID, FloodRule, FloodTarget, SimBackend, SimWorld};
use crate::telegram::{Backend, Connection, SessionSink};
use async_trait::async_trait;
use std::sync::Mutex;
use tokio::sync::Notify;

struct NoSink;

#[async_trait]
impl SessionSink for NoSink {
    async fn save(&self, _: &SessionData) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Rows in memory; every transition logged with its virtual time.
#[derive(Default)]
struct MemStore {
    rows: Mutex<Vec<outbox::Model>>,
    log: Mutex<Vec<(Instant, i64, MessageStatus)>>,
    changed: Notify,
    /// How often the drain read its heads.
    reads: std::sync::atomic::AtomicUsize,
}

impl MemStore {
    fn add(&self, chat: &str, text: &str) -> i64 {
        let mut rows = self.rows.lock().unwrap();
        let id = rows.len() as i64 + 1;
        let now = Utc::now().fixed_offset();
        rows.push(outbox::Model {
            id,
            account_id: ACCOUNT,
            user_id: 1,
            idempotency_key: None,
            request_hash: String::new(),
            chat: chat.to_owned(),
            chat_id: None,
            kind: "text".into(),
            text: text.to_owned(),
            upload_id: None,
            reply_to: None,
            silent: false,
            random_id: 1_000 + id,
            status: "queued".into(),
            attempts: 0,
            flood_waits: 0,
            telegram_message_id: None,
            last_error: None,
            next_attempt_at: None,
            created_at: now,
            updated_at: now,
            sent_at: None,
        });
        id
    }

    fn row(&self, id: i64) -> outbox::Model {
        self.rows.lock().unwrap()[(id - 1) as usize].clone()
    }

    /// When each message was recorded sent, by id.
    fn sent_at(&self) -> HashMap<i64, Instant> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, s)| *s == MessageStatus::Sent)
            .map(|(t, id, _)| (*id, *t))
            .collect()
    }

    /// Waits (in virtual time) until row `id` is sent.
    async fn sent(&self, id: i64) {
        loop {
            let changed = self.changed.notified();
            if self.row(id).status == "sent" {
                return;
            }
            changed.await;
        }
    }

    /// Waits (in virtual time) until every row has left the outbox.
    async fn settled(&self) {
        loop {
            let changed = self.changed.notified();
            if self
                .rows
                .lock()
                .unwrap()
                .iter()
                .all(|r| !MessageStatus::parse(&r.status).unwrap().pending())
            {
                return;
            }
            changed.await;
        }
    }
}

#[async_trait]
impl DrainStore for MemStore {
    async fn heads(&self, _: i64, limit: u64) -> Result<Vec<outbox::Model>, DbErr> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut seen = std::collections::HashSet::new();
        Ok(self
            .rows
            .lock()
            .unwrap()
            .iter()
            .filter(|r| MessageStatus::parse(&r.status).unwrap().pending())
            .filter(|r| seen.insert(r.chat.clone()))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn uploaded_file(&self, _: i64) -> Result<Option<crate::telegram::UploadedFile>, DbErr> {
        Ok(None)
    }

    async fn set_chat_id(&self, id: i64, chat_id: i64) -> Result<(), DbErr> {
        self.rows.lock().unwrap()[(id - 1) as usize].chat_id = Some(chat_id);
        Ok(())
    }

    async fn transition(
        &self,
        id: i64,
        status: MessageStatus,
        update: RowUpdate,
        event: serde_json::Value,
    ) -> Result<bool, WriterClosed> {
        assert_eq!(event["message_id"], id);
        assert_eq!(event["status"], status.as_str());
        update.apply(status, &mut self.rows.lock().unwrap()[(id - 1) as usize]);
        self.log.lock().unwrap().push((Instant::now(), id, status));
        self.changed.notify_waiters();
        Ok(true)
    }
}

#[derive(Default)]
struct Observer(Mutex<Vec<TgError>>);

impl DrainObserver for Observer {
    fn account_error(&self, err: TgError) {
        self.0.lock().unwrap().push(err);
    }
}

const ACCOUNT: i64 = 7;
const PHONE: &str = "+9996610001";

struct Rig {
    world: SimWorld,
    store: Arc<MemStore>,
    observer: Arc<Observer>,
    limiter: RateLimiter,
    arrivals: Arc<Arrivals>,
    _conn: Connection,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn settings() -> Settings {
    Settings::from_defaults(Environment::Test, figment::Figment::new()).expect("defaults load")
}

/// A drain for a fresh sim account, started after `before` queued its messages.
async fn rig(max_attempts: u32, before: impl FnOnce(&MemStore, &SimWorld)) -> Rig {
    let settings = settings();
    let sent = &settings.rate_limits.telegram.messages_sent;
    assert_eq!(
        (sent.window_ms, sent.max, sent.per_chat),
        (Duration::from_millis(60_000), 30, 20)
    );
    let world = SimWorld::default();
    let session = world.authorize(PHONE).expect("a sim number");
    let conn = SimBackend::new(world.clone())
        .connect(session, None, Arc::new(NoSink))
        .await
        .expect("the sim connects");
    let registry = prometheus::Registry::new();
    let limiter = RateLimiter::new(
        &settings.rate_limits,
        crate::ratelimit::RateLimitMetrics::new(&registry).expect("metrics"),
    );
    let store = Arc::new(MemStore::default());
    before(&store, &world);
    let observer = Arc::new(Observer::default());
    let arrivals = Arc::new(Arrivals::default());
    let mut outbox_settings = settings.outbox.clone();
    outbox_settings.max_attempts = max_attempts;
    let drain = Drain {
        account_id: ACCOUNT,
        client: conn.client.clone(),
        store: store.clone(),
        arrivals: arrivals.clone(),
        limiter: limiter.clone(),
        peers: peer_cache(Duration::from_secs(300)),
        metrics: OutboxMetrics::new(&registry).expect("metrics"),
        settings: outbox_settings,
        request_timeout: Duration::from_secs(30),
        observer: observer.clone(),
    };
    let task = tokio::spawn(drain.run());
    Rig {
        world,
        store,
        observer,
        limiter,
        arrivals,
        _conn: conn,
        task,
    }
}

/// Telegram's id of the message with `text` in the echo chat.
fn texts_ids(rig: &Rig, text: &str) -> i32 {
    rig.world
        .dialog(PHONE, ECHO_USER_ID)
        .into_iter()
        .find(|m| m.outgoing && m.text == text)
        .expect("sent")
        .id
}

/// The most grants inside any window of `window` in `times`.
fn busiest_window(times: &[Instant], window: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    (0..sorted.len())
        .map(|i| {
            sorted[i..]
                .iter()
                .take_while(|t| **t < sorted[i] + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[actix_rt::test]
async fn the_account_limit_holds_at_the_window_edge() {
    tokio::time::pause();
    let start = Instant::now();
    let rig = rig(8, |store, _| {
        for i in 0..40 {
            let chat = if i % 2 == 0 { "me" } else { "@echo" };
            store.add(chat, &format!("m{i}"));
        }
    })
    .await;
    rig.store.settled().await;
    let sent = rig.store.sent_at();
    assert_eq!(sent.len(), 40, "every message is sent");
    let times: Vec<Instant> = sent.values().copied().collect();
    let window = Duration::from_secs(60);
    assert_eq!(
        busiest_window(&times, window),
        30,
        "30 per minute, never more"
    );
    let early = times.iter().filter(|t| **t < start + window).count();
    assert_eq!(early, 30, "a full burst goes at once");
    let last = times.iter().max().copied().unwrap();
    assert!(
        last >= start + window && last < start + window + Duration::from_secs(1),
        "the rest go right at the window edge, not later: {:?}",
        last - start
    );
    // In order per chat.
    for chat in ["me", "@echo"] {
        let mut ids: Vec<i64> = (1..=40)
            .filter(|id| rig.store.row(*id).chat == chat)
            .collect();
        ids.sort_by_key(|id| sent[id]);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{chat} out of order");
    }
    assert_eq!(rig.world.calls()["messages.sendMessage"], 40);
}

#[actix_rt::test]
async fn the_chat_limit_holds_and_other_chats_go_meanwhile() {
    tokio::time::pause();
    let start = Instant::now();
    let rig = rig(8, |store, _| {
        for i in 0..25 {
            store.add("me", &format!("m{i}"));
        }
        store.add("@echo", "other chat");
    })
    .await;
    rig.store.settled().await;
    let sent = rig.store.sent_at();
    let me: Vec<Instant> = (1..=25).map(|id| sent[&id]).collect();
    assert_eq!(busiest_window(&me, Duration::from_secs(60)), 20);
    assert!(
        sent[&26] < start + Duration::from_secs(1),
        "the other chat is not held up by this chat's limit"
    );
    assert!(me[20] >= start + Duration::from_secs(60));
}

#[actix_rt::test]
async fn a_300s_flood_wait_on_one_chat_does_not_stop_the_others() {
    tokio::time::pause();
    let start = Instant::now();
    let rig = rig(8, |store, world| {
        world.inject_flood(FloodRule {
            target: FloodTarget::Chat(ECHO_USER_ID),
            seconds: 300,
            times: 1,
        });
        store.add("@echo", "first to echo");
        store.add("me", "a note");
        store.add("me", "another note");
        store.add("@echo", "second to echo");
    })
    .await;
    rig.store.settled().await;
    let sent = rig.store.sent_at();
    let margin = rig.limiter.margin();
    assert!(sent[&2] < start + Duration::from_secs(1));
    assert!(sent[&3] < start + Duration::from_secs(1));
    let resume = start + Duration::from_secs(300) + margin;
    assert!(sent[&1] >= resume, "the flooded chat waits 300 s + margin");
    assert!(sent[&1] < resume + Duration::from_secs(1), "and not longer");
    let order: Vec<i64> = rig
        .store
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, s)| *s == MessageStatus::Sent)
        .map(|(_, id, _)| *id)
        .collect();
    assert_eq!(order, [2, 3, 1, 4], "a chat's messages keep their order");
    let first = rig.store.row(1);
    assert_eq!((first.flood_waits, first.attempts), (1, 2));
    assert_eq!(
        first.telegram_message_id,
        Some(texts_ids(&rig, "first to echo"))
    );
    assert!(
        rig.observer.0.lock().unwrap().is_empty(),
        "a chat's wait is not the account's"
    );
    // Exactly one send of each (the flooded try never reached the chat).
    let texts: Vec<String> = rig
        .world
        .dialog(PHONE, ECHO_USER_ID)
        .into_iter()
        .filter(|m| m.outgoing)
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["first to echo", "second to echo"]);
}

#[actix_rt::test]
async fn an_account_flood_wait_queues_everything_and_resumes_on_time() {
    tokio::time::pause();
    let start = Instant::now();
    let rig = rig(8, |store, world| {
        world.inject_flood(FloodRule {
            target: FloodTarget::Method("messages.sendMessage".into()),
            seconds: 120,
            times: 1,
        });
        for i in 0..5 {
            store.add(if i % 2 == 0 { "me" } else { "@echo" }, &format!("m{i}"));
        }
    })
    .await;
    rig.store.settled().await;
    let sent = rig.store.sent_at();
    let resume = start + Duration::from_secs(120) + rig.limiter.margin();
    for id in 1..=5 {
        assert!(sent[&id] >= resume, "message {id} went during the wait");
        assert!(
            sent[&id] < resume + Duration::from_secs(1),
            "message {id} late"
        );
    }
    let errors = rig.observer.0.lock().unwrap().clone();
    assert!(
        matches!(errors.as_slice(), [TgError::FloodWait { seconds: 120, .. }]),
        "the actor hears of the long wait (flood_limited): {errors:?}"
    );
    assert_eq!(rig.world.calls()["messages.sendMessage"], 6);
}

#[actix_rt::test]
async fn a_short_flood_wait_is_waited_out_inside() {
    tokio::time::pause();
    let start = Instant::now();
    let rig = rig(8, |store, world| {
        world.inject_flood(FloodRule {
            target: FloodTarget::Method("messages.sendMessage".into()),
            seconds: 5,
            times: 1,
        });
        store.add("me", "hello");
    })
    .await;
    rig.store.settled().await;
    assert!(rig.store.sent_at()[&1] >= start + Duration::from_secs(5));
    assert!(rig.observer.0.lock().unwrap().is_empty());
}

#[actix_rt::test]
async fn transient_failures_back_off_then_fail_the_message() {
    tokio::time::pause();
    let rig = rig(3, |store, world| {
        store.add("me", "doomed");
        // The first call breaks the connection; every later one fails too.
        world.fail_next_calls(1);
    })
    .await;
    rig.store.settled().await;
    let row = rig.store.row(1);
    assert_eq!(row.status, "failed");
    assert_eq!(row.attempts, 3);
    assert_eq!(row.last_error.as_deref(), Some("network"));
    let log = rig.store.log.lock().unwrap().clone();
    let statuses: Vec<MessageStatus> = log.iter().map(|(_, _, s)| *s).collect();
    assert_eq!(
        statuses,
        [
            MessageStatus::Queued,
            MessageStatus::Queued,
            MessageStatus::Failed
        ]
    );
    // Backoff 1 s then 2 s, less up to 20 % jitter.
    let first = log[1].0 - log[0].0;
    let second = log[2].0 - log[1].0;
    assert!(
        first >= Duration::from_millis(800) && first <= Duration::from_secs(1),
        "{first:?}"
    );
    assert!(
        second >= Duration::from_millis(1600) && second <= Duration::from_secs(2),
        "{second:?}"
    );
}

#[actix_rt::test]
async fn a_permanent_error_fails_at_once_and_the_next_chat_goes_on() {
    tokio::time::pause();
    let rig = rig(8, |store, _| {
        store.add("@nosuchuser", "to nobody");
        store.add("me", "to me");
    })
    .await;
    rig.store.settled().await;
    let bad = rig.store.row(1);
    assert_eq!(bad.status, "failed");
    assert_eq!(bad.attempts, 1, "no retry");
    assert_eq!(bad.last_error.as_deref(), Some("peer_invalid"));
    assert_eq!(rig.store.row(2).status, "sent");
}

#[actix_rt::test]
async fn a_retry_after_a_lost_answer_does_not_send_twice() {
    tokio::time::pause();
    let rig = rig(8, |store, _| {
        store.add("me", "once");
    })
    .await;
    rig.store.settled().await;
    let row = rig.store.row(1);
    // Replay the same row as if the service had crashed before recording
    // "sent": the same random_id reaches Telegram again.
    let session = rig.world.authorize(PHONE).unwrap();
    let conn = SimBackend::new(rig.world.clone())
        .connect(session, None, Arc::new(NoSink))
        .await
        .unwrap();
    let me = conn.client.resolve(&ChatRef::Me).await.unwrap();
    let again = conn
        .client
        .send_text(
            &me,
            "once",
            &SendOptions {
                random_id: row.random_id,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(Some(again.id), row.telegram_message_id);
    let user = rig.world.user_id(PHONE).unwrap();
    let notes = rig.world.dialog(PHONE, user);
    assert_eq!(notes.iter().filter(|m| m.text == "once").count(), 1);
}

#[actix_rt::test]
async fn a_long_queue_in_one_chat_does_not_starve_the_others() {
    tokio::time::pause();
    let start = Instant::now();
    let rig = rig(8, |store, world| {
        world.inject_flood(FloodRule {
            target: FloodTarget::Chat(ECHO_USER_ID),
            seconds: 3600,
            times: 1,
        });
        // Far more than one look at the table would take in.
        for i in 0..2000 {
            store.add("@echo", &format!("e{i}"));
        }
        store.add("me", "not stuck behind them");
    })
    .await;
    // Wait (virtually) until the note is sent, well before the hour is up.
    rig.store.sent(2001).await;
    assert!(rig.store.sent_at()[&2001] < start + Duration::from_secs(1));
}

#[actix_rt::test]
async fn a_flood_wait_on_resolving_holds_only_that_chat() {
    tokio::time::pause();
    let start = Instant::now();
    let rig = rig(8, |store, world| {
        // The first call is resolving @echo.
        world.inject_flood(FloodRule {
            target: FloodTarget::Method("contacts.resolveUsername".into()),
            seconds: 3600,
            times: 1,
        });
        store.add("@echo", "waits for the resolve");
        store.add("me", "goes at once");
    })
    .await;
    rig.store.sent(2).await;
    assert!(rig.store.sent_at()[&2] < start + Duration::from_secs(1));
    assert!(
        rig.observer.0.lock().unwrap().is_empty(),
        "a resolve wait is not the account's flood wait"
    );
    assert!(
        rig.limiter
            .blocked_until(&Key::account_messages(ACCOUNT))
            .is_none(),
        "sending is not blocked"
    );
    rig.store.settled().await;
    assert!(rig.store.sent_at()[&1] >= start + Duration::from_secs(3600));
}

#[actix_rt::test]
async fn a_send_that_fails_in_transit_is_retried_with_the_same_random_id() {
    tokio::time::pause();
    let rig = rig(8, |store, world| {
        store.add("me", "resolved first");
        // Resolve "me" succeeds; the send breaks once (the connection stays
        // up in this client, so the retry goes through).
        world.inject_flood(FloodRule {
            target: FloodTarget::Method("messages.sendMessage".into()),
            seconds: 2,
            times: 1,
        });
    })
    .await;
    rig.store.settled().await;
    let row = rig.store.row(1);
    assert_eq!(row.status, "sent");
    assert_eq!((row.attempts, row.flood_waits), (2, 1));
    let user = rig.world.user_id(PHONE).unwrap();
    let notes = rig.world.dialog(PHONE, user);
    assert_eq!(
        notes.iter().filter(|m| m.text == "resolved first").count(),
        1
    );
    let statuses: Vec<MessageStatus> = rig
        .store
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, s)| *s)
        .collect();
    assert_eq!(
        statuses,
        [
            MessageStatus::Sending,
            MessageStatus::Queued,
            MessageStatus::Sending,
            MessageStatus::Sent
        ]
    );
}

impl Rig {
    /// A message accepted while the drain runs.
    fn arrive(&self, chat: &str, text: &str) -> i64 {
        let id = self.store.add(chat, text);
        self.arrivals.note([chat]);
        id
    }

    fn reads(&self) -> usize {
        self.store.reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Lets every task run until all are idle (asleep on the paused clock or
/// waiting for something), then moves the clock by `d`.
async fn idle_for(d: Duration) {
    tokio::time::sleep(d).await;
}

#[actix_rt::test]
async fn arrivals_for_a_waiting_chat_do_not_reread_the_queue_and_a_new_chat_goes_at_once() {
    tokio::time::pause();
    let start = Instant::now();
    let rig = rig(8, |store, _| {
        for i in 0..21 {
            store.add("me", &format!("m{i}"));
        }
    })
    .await;
    rig.store.sent(20).await;
    // The 21st waits for the chat's window (the account's is not full).
    idle_for(Duration::from_secs(1)).await;
    let reads = rig.reads();
    for i in 0..50 {
        rig.arrive("me", &format!("late{i}"));
    }
    idle_for(Duration::from_secs(1)).await;
    assert_eq!(
        rig.reads(),
        reads,
        "messages behind a waiting head do not make the drain read its queue"
    );
    assert_eq!(rig.store.row(21).status, "queued");
    // A new chat can go now: the drain wakes for it.
    let echo = rig.arrive("@echo", "hello");
    rig.store.sent(echo).await;
    assert!(rig.reads() > reads);
    assert!(
        rig.store.sent_at()[&echo] < start + Duration::from_secs(3),
        "the new chat does not wait for the other chat's window"
    );
    rig.store.sent(21).await;
    assert!(rig.store.sent_at()[&21] >= start + Duration::from_secs(60));
}

#[actix_rt::test]
async fn while_the_account_limit_holds_arrivals_do_not_wake_the_drain() {
    tokio::time::pause();
    let start = Instant::now();
    let rig = rig(8, |store, _| {
        for i in 0..31 {
            let chat = if i % 2 == 0 { "me" } else { "@echo" };
            store.add(chat, &format!("m{i}"));
        }
    })
    .await;
    rig.store.sent(30).await;
    idle_for(Duration::from_secs(1)).await;
    let reads = rig.reads();
    let other = rig.arrive("@echo_bot_b", "nothing can go before the account allows it");
    idle_for(Duration::from_secs(1)).await;
    assert_eq!(
        rig.reads(),
        reads,
        "the account is full: no new chat can go sooner"
    );
    rig.store.settled().await;
    assert!(rig.store.sent_at()[&31] >= start + Duration::from_secs(60));
    let first_try = rig
        .store
        .log
        .lock()
        .unwrap()
        .iter()
        .find(|(_, id, _)| *id == other)
        .map(|(at, _, _)| *at)
        .expect("the new chat's message was tried");
    assert!(first_try >= start + Duration::from_secs(60));
}
