//! `GrammersBackend` (the real grammers 0.11 client behind tgvisor's
//! Telegram port) against the loopback fake MTProto server.

use async_trait::async_trait;
use fake_mtproto::FakeServer;
use secrecy::SecretString;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tgvisor::config::{TelegramBackend, TelegramSettings};
use tgvisor::domain::validation::ChatRef;
use tgvisor::sessions::{AuthKey, SessionData};
use tgvisor::telegram::grammers::GrammersBackend;
use tgvisor::telegram::grammers::session::BackendState;
use tgvisor::telegram::sim::{ECHO_USER_ID, FloodRule, FloodTarget, SimWorld};
use tgvisor::telegram::{
    Backend, Connection, FloodScope, Incoming, MediaKind, Message, PeerKind, SendOptions,
    SessionSink, TgError, Update, UpdateState, UploadedFile,
};
use tokio::sync::Notify;

const PHONE: &str = "+9996621234";
/// Upper bound for any await: a broken backend fails the test, never hangs it.
const T: Duration = Duration::from_secs(20);

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(T, f).await {
        Ok(out) => out,
        Err(_) => panic!("timed out: {what}"),
    }
}

fn settings() -> TelegramSettings {
    TelegramSettings {
        backend: TelegramBackend::Grammers,
        api_id: 1,
        api_hash: Some(SecretString::from("00000000000000000000000000000000")),
        client_pool_size: 1,
        max_clients_per_user: 0,
        health_check_interval_ms: Duration::from_millis(60_000),
        session_rotation_interval_ms: Duration::from_millis(0),
        max_session_age_ms: Duration::from_millis(0),
        session_error_threshold: 3,
        request_timeout_ms: Duration::from_millis(10_000),
        // The backend does not use it (the account's update pump does).
        update_state_sync_interval_ms: Duration::from_millis(3_600_000),
        pending_login_ttl_ms: Duration::from_millis(60_000),
        max_pending_logins: 10,
        max_pending_logins_per_user: 2,
        login_attempts: 3,
        account_restarts: tgvisor::config::AccountRestartSettings {
            max_restarts: 10,
            period_ms: Duration::from_millis(600_000),
            backoff_base_ms: Duration::from_millis(1000),
            backoff_cap_ms: Duration::from_millis(60_000),
        },
    }
}

/// Records every session the backend writes.
#[derive(Default)]
struct Sink {
    saves: Mutex<Vec<SessionData>>,
    notify: Notify,
}

#[async_trait]
impl SessionSink for Sink {
    async fn save(&self, data: &SessionData) -> anyhow::Result<()> {
        self.saves.lock().unwrap().push(data.clone());
        self.notify.notify_waiters();
        Ok(())
    }
}

impl Sink {
    fn last(&self) -> Option<SessionData> {
        self.saves.lock().unwrap().last().cloned()
    }
    fn state(&self) -> Option<BackendState> {
        self.last()
            .and_then(|d| d.backend_state)
            .and_then(|v| serde_json::from_value(v).ok())
    }
}

struct Setup {
    world: SimWorld,
    server: FakeServer,
    data: SessionData,
    backend: GrammersBackend,
    sink: Arc<Sink>,
}

async fn setup() -> Setup {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let world = SimWorld::default();
    let server = FakeServer::start(world.clone()).await.expect("start");
    let data = server.authorize(PHONE).expect("a sim number");
    Setup {
        world,
        server,
        data,
        backend: GrammersBackend::new(&settings()),
        sink: Arc::new(Sink::default()),
    }
}

impl Setup {
    async fn connect(&self) -> Connection {
        within(
            "connect",
            self.backend
                .connect(self.data.clone(), None, self.sink.clone()),
        )
        .await
        .expect("connect")
    }
}

/// The next incoming new message on the connection (own sends come back
/// as outgoing updates too; they are skipped).
async fn next_incoming(conn: &mut Connection) -> Message {
    next_incoming_with_state(conn).await.0
}

/// [`next_incoming`] with the state it came with.
async fn next_incoming_with_state(conn: &mut Connection) -> (Message, Option<UpdateState>) {
    within("an incoming message", async {
        loop {
            match conn
                .updates
                .recv()
                .await
                .expect("the update stream is open")
            {
                Incoming {
                    update: Some(Update::NewMessage(m)),
                    state,
                } if !m.outgoing => return (m, state),
                _ => continue,
            }
        }
    })
    .await
}

fn opts(random_id: i64) -> SendOptions {
    SendOptions {
        reply_to: None,
        silent: false,
        random_id,
    }
}

#[actix_rt::test]
async fn connect_verifies_the_session_and_get_me_returns_the_sim_user() {
    let s = setup().await;
    let conn = s.connect().await;
    // connect itself asked who we are.
    assert_eq!(s.server.requests().get("users.getUsers"), Some(&1));
    let me = within("get_me", conn.client.get_me())
        .await
        .expect("get_me");
    assert_eq!(Some(me.id), s.world.user_id(PHONE));
    assert_eq!(me.first_name, "Sim 1234");
    let rtt = within("ping", conn.client.ping()).await.expect("ping");
    assert!(rtt < T);
    within("disconnect", conn.client.disconnect()).await;
    within("the fake to see the close", s.server.wait_connections(0)).await;
}

#[actix_rt::test]
async fn an_unknown_auth_key_is_unauthorized_at_connect_and_nothing_is_stored() {
    let s = setup().await;
    let mut data = s.data.clone();
    for dc in &mut data.dcs {
        dc.auth_key = Some(AuthKey::new([7u8; 256]));
    }
    let err = within("connect", s.backend.connect(data, None, s.sink.clone()))
        .await
        .err()
        .expect("refused");
    assert_eq!(err, TgError::Unauthorized);
    assert!(s.sink.last().is_none(), "a failed connect writes nothing");
}

#[actix_rt::test]
async fn a_send_uses_our_random_id_and_a_resend_does_not_duplicate() {
    let s = setup().await;
    let conn = s.connect().await;
    let echo = within(
        "resolve",
        conn.client.resolve(&ChatRef::Username("echo".into())),
    )
    .await
    .expect("resolve @echo");
    assert_eq!((echo.id, echo.kind), (ECHO_USER_ID, PeerKind::User));

    let sent = within("send", conn.client.send_text(&echo, "hello", &opts(777)))
        .await
        .expect("send");
    assert!(sent.id > 0);
    assert_eq!(sent.text, "hello");
    assert_eq!(sent.chat_id, ECHO_USER_ID);
    assert!(sent.outgoing);
    // The same random id again (an outbox retry): Telegram's duplicate
    // suppression answers with the original message.
    let again = within("resend", conn.client.send_text(&echo, "hello", &opts(777)))
        .await
        .expect("resend");
    assert_eq!(again.id, sent.id);
    let history = within("history", conn.client.history(&echo, 10, None))
        .await
        .expect("history");
    let hellos = history.iter().filter(|m| m.text == "hello" && m.outgoing);
    assert_eq!(hellos.count(), 1, "{history:?}");

    // Replies and Saved Messages.
    let me = within("resolve me", conn.client.resolve(&ChatRef::Me))
        .await
        .expect("me");
    assert_eq!(me.kind, PeerKind::SelfChat);
    let first = within("send", conn.client.send_text(&me, "note", &opts(1)))
        .await
        .expect("send");
    let reply = SendOptions {
        reply_to: Some(first.id),
        silent: true,
        random_id: 2,
    };
    let second = within("reply", conn.client.send_text(&me, "re", &reply))
        .await
        .expect("reply");
    assert_eq!(second.reply_to, Some(first.id));
    let saved = within("history", conn.client.history(&me, 10, None))
        .await
        .expect("history");
    assert_eq!(
        saved.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["re", "note"]
    );
    within("disconnect", conn.client.disconnect()).await;
}

#[actix_rt::test]
async fn resolve_by_id_uses_the_peer_cache() {
    let s = setup().await;
    let conn = s.connect().await;
    let err = within("resolve", conn.client.resolve(&ChatRef::Id(ECHO_USER_ID)))
        .await
        .expect_err("not seen yet");
    assert_eq!(err, TgError::PeerInvalid);
    within(
        "resolve",
        conn.client.resolve(&ChatRef::Username("echo".into())),
    )
    .await
    .expect("resolve @echo");
    let echo = within("resolve", conn.client.resolve(&ChatRef::Id(ECHO_USER_ID)))
        .await
        .expect("cached now");
    assert_eq!(echo.username.as_deref(), Some("echo"));
    assert_eq!(echo.title, "Echo");
    let err = within(
        "resolve",
        conn.client
            .resolve(&ChatRef::Username("nobody_here".into())),
    )
    .await
    .expect_err("unknown username");
    assert_eq!(err, TgError::PeerInvalid);
    within("disconnect", conn.client.disconnect()).await;
}

#[actix_rt::test]
async fn flood_waits_come_back_at_once_with_their_scope() {
    let s = setup().await;
    let conn = s.connect().await;
    let me = within("me", conn.client.resolve(&ChatRef::Me))
        .await
        .expect("me");
    s.world.inject_flood(FloodRule {
        target: FloodTarget::Method("messages.sendMessage".into()),
        seconds: 30,
        times: 1,
    });
    let started = tokio::time::Instant::now();
    let err = within("send", conn.client.send_text(&me, "x", &opts(10)))
        .await
        .expect_err("flooded");
    assert_eq!(
        err,
        TgError::FloodWait {
            seconds: 30,
            scope: FloodScope::Account
        }
    );
    // grammers' default policy would have slept 30 s inside the call.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(s.server.requests().get("messages.sendMessage"), Some(&1));

    // A per-chat wait carries the chat.
    s.world.inject_flood(FloodRule {
        target: FloodTarget::Chat(me.id),
        seconds: 9,
        times: 1,
    });
    let err = within("send", conn.client.send_text(&me, "y", &opts(11)))
        .await
        .expect_err("slow mode");
    assert_eq!(
        err,
        TgError::FloodWait {
            seconds: 9,
            scope: FloodScope::Chat { chat_id: me.id }
        }
    );
    within("send", conn.client.send_text(&me, "z", &opts(12)))
        .await
        .expect("the rules are used up");
    within("disconnect", conn.client.disconnect()).await;
}

#[actix_rt::test]
async fn a_connection_dropped_mid_send_is_retried_once_without_duplicates() {
    let s = setup().await;
    let conn = s.connect().await;
    let me = within("me", conn.client.resolve(&ChatRef::Me))
        .await
        .expect("me");
    let accepted = s.server.accepted();

    // Applied, answer lost: the retry (same random id) gets the original.
    s.server.drop_on_next("messages.sendMessage", true);
    let sent = within("send", conn.client.send_text(&me, "once", &opts(500)))
        .await
        .expect("the retried send succeeds");
    assert_eq!(s.server.requests().get("messages.sendMessage"), Some(&2));
    assert!(s.server.accepted() > accepted, "the retry reconnected");

    // Not applied: the retry sends it for the first time.
    s.server.drop_on_next("messages.sendMessage", false);
    within("send", conn.client.send_text(&me, "twice", &opts(501)))
        .await
        .expect("the retried send succeeds");

    let history = within("history", conn.client.history(&me, 10, None))
        .await
        .expect("history");
    assert_eq!(
        history.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["twice", "once"],
        "exactly one of each"
    );
    assert_eq!(history[1].id, sent.id);

    // A failure of the sim itself drops the connection and is retried too.
    s.world.fail_next_calls(1);
    within("get_me", conn.client.get_me())
        .await
        .expect("get_me after the failure");
    within("disconnect", conn.client.disconnect()).await;
}

#[actix_rt::test]
async fn pushed_messages_and_the_echo_reply_arrive_as_updates() {
    let s = setup().await;
    let mut conn = s.connect().await;
    s.world
        .deliver_from(ECHO_USER_ID, PHONE, "from afar")
        .expect("delivered");
    let m = next_incoming(&mut conn).await;
    assert_eq!(m.text, "from afar");
    assert_eq!(m.sender_id, Some(ECHO_USER_ID));
    assert_eq!(m.chat_id, ECHO_USER_ID);

    let echo = within(
        "resolve",
        conn.client.resolve(&ChatRef::Username("echo".into())),
    )
    .await
    .expect("resolve");
    let sent = within("send", conn.client.send_text(&echo, "ping pong", &opts(3)))
        .await
        .expect("send");
    let reply = next_incoming(&mut conn).await;
    assert_eq!(reply.text, "ping pong");
    assert_eq!(reply.sender_id, Some(ECHO_USER_ID));
    assert!(reply.id > sent.id);
    within("disconnect", conn.client.disconnect()).await;
}

#[actix_rt::test]
async fn the_stream_starts_with_the_state_it_fetched_and_updates_carry_theirs() {
    let s = setup().await;
    let mut conn = s.connect().await;
    // No state was given and the session has none: Telegram's state now
    // comes first, to be stored.
    let first = within("the first item", conn.updates.recv())
        .await
        .expect("the update stream is open");
    let start = match first {
        Incoming {
            update: None,
            state: Some(state),
        } => state,
        other => panic!("expected the start state first, got {other:?}"),
    };
    assert!(s.server.requests().contains_key("updates.getState"));
    s.world
        .deliver_from(ECHO_USER_ID, PHONE, "one")
        .expect("delivered");
    let (m, state) = next_incoming_with_state(&mut conn).await;
    assert_eq!(m.text, "one");
    let state = state.expect("a message on its own carries its state");
    assert_eq!(state.pts, start.pts + 1, "{start:?} → {state:?}");
    assert!(state.date > 0, "{state:?}");
    // The session blob keeps the start, never the live state.
    within("sync", conn.client.sync_state())
        .await
        .expect("sync");
    let saved = s.sink.state().expect("a saved backend state");
    assert_eq!(saved.updates.expect("the start state").pts, start.pts);
    let saved = s.sink.last().unwrap();
    assert_eq!(saved.user_id, s.world.user_id(PHONE));
    assert_eq!(saved.dcs, s.data.dcs);
    within("disconnect", conn.client.disconnect()).await;
}

#[actix_rt::test]
async fn missed_messages_are_caught_up_from_the_stored_state_their_page_reached_last() {
    let s = setup().await;
    let mut conn = s.connect().await;
    s.world
        .deliver_from(ECHO_USER_ID, PHONE, "live")
        .expect("delivered");
    let (live, stored) = next_incoming_with_state(&mut conn).await;
    assert_eq!(live.text, "live");
    let stored = stored.expect("its state");
    within("disconnect", conn.client.disconnect()).await;
    drop(conn);
    within("the fake to see the close", s.server.wait_connections(0)).await;

    for text in ["missed 1", "missed 2", "missed 3"] {
        s.world
            .deliver_from(ECHO_USER_ID, PHONE, text)
            .expect("delivered");
    }
    // From the state stored with "live" (the session blob knows only the
    // first connection's start).
    let saved = s.sink.last().expect("the session was saved");
    let mut conn = within(
        "connect",
        s.backend
            .connect(saved, Some(stored.clone()), s.sink.clone()),
    )
    .await
    .expect("reconnect");
    let mut caught_up = Vec::new();
    for _ in 0..3 {
        caught_up.push(next_incoming_with_state(&mut conn).await);
    }
    let texts: Vec<&str> = caught_up.iter().map(|(m, _)| m.text.as_str()).collect();
    assert_eq!(texts, ["missed 1", "missed 2", "missed 3"]);
    assert!(s.server.requests().contains_key("updates.getDifference"));
    // One page of getDifference: every message but the last goes without a
    // state (grammers gives them all the page's final pts).
    let states: Vec<Option<i32>> = caught_up
        .iter()
        .map(|(_, st)| st.as_ref().map(|st| st.pts))
        .collect();
    assert_eq!(states, [None, None, Some(stored.pts + 3)]);

    s.world
        .deliver_from(ECHO_USER_ID, PHONE, "live again")
        .expect("delivered");
    assert_eq!(next_incoming(&mut conn).await.text, "live again");
    within("disconnect", conn.client.disconnect()).await;
}

#[actix_rt::test]
async fn a_panicking_connection_task_resolves_closed() {
    let s = setup().await;
    let conn = s.connect().await;
    s.server.panic_client_on_next("users.getUsers");
    let err = within("get_me", conn.client.get_me())
        .await
        .expect_err("the connection task died");
    assert!(matches!(err, TgError::Network(_)), "{err:?}");
    let reason = within("closed", conn.closed).await;
    match reason {
        TgError::Other { name, .. } => assert!(name.contains("wrong session id"), "{name}"),
        other => panic!("expected the panic as the reason, got {other:?}"),
    }
}

#[actix_rt::test]
async fn a_revoked_session_is_refused_at_connect() {
    let s = setup().await;
    s.world.revoke_sessions(PHONE);
    let err = within(
        "connect",
        s.backend.connect(s.data.clone(), None, s.sink.clone()),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.is_session_fatal(), "{err:?}");
}

#[actix_rt::test]
async fn uploaded_parts_are_sent_as_a_document() {
    let s = setup().await;
    let conn = s.connect().await;
    let me = within("me", conn.client.resolve(&ChatRef::Me))
        .await
        .expect("me");
    let part = vec![7u8; 512 * 1024];
    let tail = vec![8u8; 100];
    within("part 0", conn.client.save_file_part(99, 0, None, &part))
        .await
        .expect("part 0");
    within("part 1", conn.client.save_file_part(99, 1, None, &tail))
        .await
        .expect("part 1");
    assert_eq!(s.server.requests().get("upload.saveFilePart"), Some(&2));
    let file = UploadedFile {
        file_id: 99,
        parts: 2,
        name: "blob.bin".into(),
        size: (part.len() + tail.len()) as u64,
        big: false,
    };
    let sent = within(
        "send media",
        conn.client
            .send_media(&me, &file, MediaKind::Document, "a file", &opts(42)),
    )
    .await
    .expect("send media");
    assert_eq!(sent.text, "a file");
    let media = sent.media.expect("media");
    assert_eq!(media.kind, MediaKind::Document);
    let history = within("history", conn.client.history(&me, 1, None))
        .await
        .expect("history");
    assert_eq!(
        history[0].media.as_ref().map(|m| m.kind),
        Some(MediaKind::Document)
    );
    assert_eq!(
        history[0].media.as_ref().and_then(|m| m.name.as_deref()),
        Some("blob.bin")
    );
    within("disconnect", conn.client.disconnect()).await;
}

#[actix_rt::test]
async fn a_slow_answer_is_a_timeout() {
    let s = setup().await;
    let backend = GrammersBackend::new(&TelegramSettings {
        request_timeout_ms: Duration::from_millis(300),
        ..settings()
    });
    let conn = within(
        "connect",
        backend.connect(s.data.clone(), None, s.sink.clone()),
    )
    .await
    .expect("connect");
    s.world.set_latency(Duration::from_secs(3));
    let err = within("get_me", conn.client.get_me())
        .await
        .expect_err("too slow");
    assert_eq!(err, TgError::Timeout(Duration::from_millis(300)));
    s.world.set_latency(Duration::ZERO);
    within("disconnect", conn.client.disconnect()).await;
}
