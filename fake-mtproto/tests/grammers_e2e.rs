//! The real grammers 0.11 client, unpatched, against the fake server.

use fake_mtproto::FakeServer;
use grammers_client::Client;
use grammers_client::message::InputMessage;
use grammers_client::update::Update;
use grammers_mtsender::{
    ConnectionParams, InvocationError, NoRetries, SenderPool, SenderPoolFatHandle,
    UpdatesConfiguration,
};
use grammers_session::Session as _;
use grammers_session::storages::MemorySession;
use grammers_session::types::{DcOption, PeerAuth, PeerId, PeerRef};
use grammers_session::updates::UpdatesLike;
use grammers_tl_types as tl;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tgvisor::sessions::SessionData;
use tgvisor::telegram::sim::{ECHO_USER_ID, FloodRule, FloodTarget, SimWorld};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const PHONE: &str = "+9996621234";
const API_ID: i32 = 1;
/// Upper bound for any await: a broken server fails the test, never hangs it.
const T: Duration = Duration::from_secs(15);

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(T, f).await {
        Ok(out) => out,
        Err(_) => panic!("timed out: {what}"),
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A grammers session seeded the way TELEGRAM_NOTES.md describes: every DC
/// at the fake's address, the auth key on the DCs the session has one for.
fn grammers_session(server: &FakeServer, data: &SessionData) -> Arc<MemorySession> {
    let mut gs = grammers_session::SessionData {
        home_dc: data.home_dc,
        ..Default::default()
    };
    gs.dc_options = (1..=5)
        .map(|id| {
            let auth_key = data
                .dcs
                .iter()
                .find(|d| d.id == id)
                .and_then(|d| d.auth_key.as_ref())
                .map(|k| *k.expose());
            let option = DcOption {
                id,
                ipv4: server.addr_v4(),
                ipv6: server.addr_v6(),
                auth_key,
            };
            (id, option)
        })
        .collect();
    Arc::new(MemorySession::from(gs))
}

/// One running grammers client.
struct Tg {
    client: Client,
    handle: SenderPoolFatHandle,
    runner: JoinHandle<()>,
    updates: Option<mpsc::Receiver<UpdatesLike>>,
}

impl Tg {
    fn start(session: Arc<MemorySession>, params: ConnectionParams) -> Self {
        let pool = SenderPool::with_configuration(session, API_ID, params);
        let handle = pool.handle.clone();
        let client = Client::new(pool.handle);
        let runner = tokio::spawn(pool.runner.run());
        Self {
            client,
            handle,
            runner,
            updates: Some(pool.updates),
        }
    }

    fn with_defaults(session: Arc<MemorySession>) -> Self {
        Self::start(session, ConnectionParams::default())
    }

    async fn stream(&mut self, catch_up: bool) -> grammers_client::client::UpdateStream {
        let updates = self.updates.take().expect("one stream per pool");
        within(
            "stream_updates",
            self.client
                .stream_updates(updates, UpdatesConfiguration { catch_up }),
        )
        .await
        .expect("stream_updates")
    }

    async fn quit(self) {
        self.handle.quit();
        within("runner to stop", self.runner)
            .await
            .expect("runner ends cleanly");
    }
}

fn saved_messages() -> PeerRef {
    PeerRef {
        id: PeerId::self_user(),
        auth: PeerAuth::default(),
    }
}

async fn resolve(client: &Client, username: &str) -> PeerRef {
    let peer = within("resolve", client.resolve_username(username))
        .await
        .expect("resolve")
        .expect("the user exists");
    peer.to_ref()
        .await
        .expect("to_ref")
        .expect("a usable reference")
}

/// Texts of the newest `limit` messages of a chat, newest first.
async fn history(client: &Client, peer: PeerRef, limit: usize) -> Vec<String> {
    let mut iter = client.iter_messages(peer).limit(limit);
    let mut texts = Vec::new();
    while let Some(m) = within("history page", iter.next()).await.expect("history") {
        texts.push(m.text().to_owned());
    }
    texts
}

/// The next new message the stream yields that matches.
async fn next_message(
    stream: &mut grammers_client::client::UpdateStream,
    matches: impl Fn(&grammers_client::message::Message) -> bool,
) -> grammers_client::update::Message {
    loop {
        match within("an update", stream.next()).await.expect("update") {
            Update::NewMessage(m) if matches(&m) => return m,
            _ => {}
        }
    }
}

async fn setup() -> (SimWorld, FakeServer, SessionData) {
    init_tracing();
    let world = SimWorld::default();
    let server = FakeServer::start(world.clone()).await.expect("start");
    let data = server.authorize(PHONE).expect("a sim number");
    (world, server, data)
}

#[tokio::test]
async fn get_me_returns_the_sim_user() {
    let (world, server, data) = setup().await;
    let tg = Tg::with_defaults(grammers_session(&server, &data));
    let me = within("get_me", tg.client.get_me()).await.expect("get_me");
    assert_eq!(me.id().bare_id(), world.user_id(PHONE));
    assert_eq!(me.first_name(), Some("Sim 1234"));
    assert!(me.is_self());
    let requests = server.requests();
    assert_eq!(requests.get("help.getConfig"), Some(&1), "{requests:?}");
    assert_eq!(requests.get("users.getUsers"), Some(&1), "{requests:?}");
    assert_eq!(server.connections(), 1);
    tg.quit().await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_echo_reply_arrives_as_a_live_update() {
    let (_world, server, data) = setup().await;
    let mut tg = Tg::with_defaults(grammers_session(&server, &data));
    // Created before anything is cached: no getState, every update applies.
    let mut stream = tg.stream(false).await;
    let echo = resolve(&tg.client, "echo").await;
    assert_eq!(echo.id.bare_id(), Some(ECHO_USER_ID));
    let sent = within("send", tg.client.send_message(echo, "ping pong"))
        .await
        .expect("send");
    assert!(sent.outgoing());
    assert!(sent.id() > 0, "the answer carries the new message id");

    let reply = next_message(&mut stream, |m| !m.outgoing()).await;
    assert_eq!(reply.text(), "ping pong");
    assert_eq!(
        reply.sender_id().and_then(|p| p.bare_id()),
        Some(ECHO_USER_ID)
    );
    assert_eq!(reply.id(), sent.id() + 1);
    drop(stream);
    tg.quit().await;
}

#[tokio::test]
async fn an_injected_flood_wait_comes_back_as_an_rpc_error() {
    let (world, server, data) = setup().await;
    let tg = Tg::with_defaults(grammers_session(&server, &data));
    world.inject_flood(FloodRule {
        target: FloodTarget::Method("messages.sendMessage".into()),
        seconds: 3600,
        times: 1,
    });
    let err = within("send", tg.client.send_message(saved_messages(), "x"))
        .await
        .expect_err("flooded");
    match err {
        InvocationError::Rpc(rpc) => {
            assert_eq!(rpc.code, 420);
            assert_eq!(rpc.name, "FLOOD_WAIT");
            assert_eq!(rpc.value, Some(3600));
        }
        other => panic!("expected an RPC error, got {other:?}"),
    }
    // The rule was used up: the next send goes through.
    within("send", tg.client.send_message(saved_messages(), "y"))
        .await
        .expect("send after the flood");
    assert_eq!(history(&tg.client, saved_messages(), 10).await, ["y"]);
    tg.quit().await;
}

#[tokio::test]
async fn saved_messages_history_returns_what_was_sent() {
    let (_world, server, data) = setup().await;
    let tg = Tg::with_defaults(grammers_session(&server, &data));
    for text in ["one", "two", "three"] {
        within("send", tg.client.send_message(saved_messages(), text))
            .await
            .expect("send");
    }
    assert_eq!(
        history(&tg.client, saved_messages(), 10).await,
        ["three", "two", "one"]
    );
    // Pages: a limit below the count makes grammers page with offset_id.
    let mut iter = tg.client.iter_messages(saved_messages()).limit(2);
    let first = within("page", iter.next())
        .await
        .expect("page")
        .expect("one");
    assert!(first.outgoing());
    assert_eq!(first.text(), "three");
    assert_eq!(
        within("total", tg.client.iter_messages(saved_messages()).total())
            .await
            .expect("total"),
        3
    );

    // Long enough that grammers gzips the request and the fake gzips the
    // history answer.
    let long = "all work and no play ".repeat(150);
    within(
        "send",
        tg.client.send_message(saved_messages(), long.as_str()),
    )
    .await
    .expect("send a gzipped request");
    assert_eq!(history(&tg.client, saved_messages(), 1).await, [long]);
    tg.quit().await;
}

#[tokio::test]
async fn a_dropped_request_fails_and_the_next_call_reconnects() {
    let (world, server, data) = setup().await;
    let params = ConnectionParams {
        retry_policy: Box::new(NoRetries),
        ..Default::default()
    };
    let tg = Tg::start(grammers_session(&server, &data), params);
    within("get_me", tg.client.get_me()).await.expect("get_me");
    assert_eq!(server.accepted(), 1);

    // Not applied: the connection dies before the world sees the send.
    server.drop_on_next("messages.sendMessage", false);
    let err = within("send", tg.client.send_message(saved_messages(), "lost"))
        .await
        .expect_err("dropped");
    assert!(
        matches!(err, InvocationError::Io(_) | InvocationError::Dropped(_)),
        "{err:?}"
    );
    assert_eq!(
        history(&tg.client, saved_messages(), 10).await,
        Vec::<String>::new()
    );
    server.wait_accepted(2).await;

    // Applied: the send happened, only the answer was lost.
    server.drop_on_next("messages.sendMessage", true);
    let err = within("send", tg.client.send_message(saved_messages(), "applied"))
        .await
        .expect_err("dropped");
    assert!(
        matches!(err, InvocationError::Io(_) | InvocationError::Dropped(_)),
        "{err:?}"
    );
    within("send", tg.client.send_message(saved_messages(), "after"))
        .await
        .expect("send after reconnecting");
    assert_eq!(
        history(&tg.client, saved_messages(), 10).await,
        ["after", "applied"]
    );
    assert_eq!(server.accepted(), 3);

    // The sim's own injected network failure closes the connection too, and
    // the fake reopens its sim connection behind the next call.
    world.fail_next_calls(1);
    let err = within("get_me", tg.client.get_me())
        .await
        .expect_err("network failure");
    assert!(matches!(err, InvocationError::Io(_)), "{err:?}");
    within("get_me", tg.client.get_me())
        .await
        .expect("get_me after the failure");
    assert_eq!(server.accepted(), 4);
    tg.quit().await;
}

#[tokio::test]
async fn grammers_retries_a_lost_answer_with_the_same_random_id_and_nothing_duplicates() {
    let (world, server, data) = setup().await;
    // Default policy: one I/O error is retried after 1 s, same body.
    let tg = Tg::with_defaults(grammers_session(&server, &data));
    within("get_me", tg.client.get_me()).await.expect("get_me");
    server.drop_on_next("messages.sendMessage", true);
    let sent = within("send", tg.client.send_message(saved_messages(), "once"))
        .await
        .expect("retried send succeeds");
    assert_eq!(server.requests().get("messages.sendMessage"), Some(&2));
    assert_eq!(history(&tg.client, saved_messages(), 10).await, ["once"]);
    assert_eq!(sent.id(), 1, "the retry answered with the original message");

    // A sim-wide outage closes the TCP connections; grammers' retry of the
    // failed call reconnects.
    let accepted = server.accepted();
    world.drop_connections();
    within("the fake to close", server.wait_connections(0)).await;
    within("get_me", tg.client.get_me())
        .await
        .expect("get_me after the outage");
    assert!(server.accepted() > accepted);
    tg.quit().await;
}

#[tokio::test]
async fn catch_up_recovers_messages_delivered_while_disconnected() {
    let (world, server, data) = setup().await;
    let session = grammers_session(&server, &data);

    // First run: see one live message, save the update state, quit.
    let mut tg = Tg::with_defaults(session.clone());
    let mut stream = tg.stream(true).await;
    within("get_me", tg.client.get_me()).await.expect("get_me");
    world
        .deliver_from(ECHO_USER_ID, PHONE, "live")
        .expect("delivered");
    let live = next_message(&mut stream, |_| true).await;
    assert_eq!(live.text(), "live");
    within("sync", stream.sync_update_state())
        .await
        .expect("sync state");
    let saved_pts = within("state", session.updates_state())
        .await
        .expect("state")
        .pts;
    assert_eq!(saved_pts, 1);
    drop(stream);
    tg.quit().await;
    within("the server to see the close", server.wait_connections(0)).await;

    // While no client is connected.
    world
        .deliver_from(ECHO_USER_ID, PHONE, "missed 1")
        .expect("delivered");
    world
        .deliver_from(ECHO_USER_ID, PHONE, "missed 2")
        .expect("delivered");

    // Second run from the saved state: grammers asks for the difference.
    let mut tg = Tg::with_defaults(session.clone());
    let mut stream = tg.stream(true).await;
    let first = next_message(&mut stream, |_| true).await;
    let second = next_message(&mut stream, |_| true).await;
    assert_eq!([first.text(), second.text()], ["missed 1", "missed 2"]);
    assert_eq!(server.requests().get("updates.getDifference"), Some(&1));

    // And live updates keep flowing after the catch-up.
    world
        .deliver_from(ECHO_USER_ID, PHONE, "live again")
        .expect("delivered");
    let third = next_message(&mut stream, |_| true).await;
    assert_eq!(third.text(), "live again");
    drop(stream);
    tg.quit().await;
}

#[tokio::test]
async fn an_unknown_auth_key_is_refused_with_404() {
    let (_world, server, mut data) = setup().await;
    for dc in &mut data.dcs {
        dc.auth_key = Some(tgvisor::sessions::AuthKey::new([7u8; 256]));
    }
    let tg = Tg::with_defaults(grammers_session(&server, &data));
    let err = within("get_me", tg.client.get_me())
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            InvocationError::Transport(grammers_mtproto::transport::Error::BadStatus {
                status: 404
            })
        ),
        "{err:?}"
    );
    // On -404 grammers drops the key and tries the DH exchange, which the
    // fake refuses the same way.
    let requests = server.requests();
    assert_eq!(requests.get("req_pq_multi"), Some(&1), "{requests:?}");
    assert!(!requests.contains_key("users.getUsers"), "{requests:?}");
    tg.quit().await;
}

#[tokio::test]
async fn a_wrong_session_id_panics_the_grammers_runner() {
    let (_world, server, data) = setup().await;
    let tg = Tg::with_defaults(grammers_session(&server, &data));
    within("get_me", tg.client.get_me()).await.expect("get_me");
    server.panic_client_on_next("users.getUsers");
    let err = within("get_me", tg.client.get_me())
        .await
        .expect_err("the connection task died");
    assert!(matches!(err, InvocationError::Dropped(_)), "{err:?}");
    let joined = within("runner", tg.runner).await;
    let panic = joined.expect_err("the runner re-raised the panic");
    assert!(panic.is_panic());
    let payload = panic.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or_default();
    assert_eq!(message, "wrong session id");
}

#[tokio::test]
async fn sim_errors_and_unsupported_methods_are_rpc_errors() {
    let (world, server, data) = setup().await;
    let tg = Tg::with_defaults(grammers_session(&server, &data));
    within("get_me", tg.client.get_me()).await.expect("get_me");

    let err = within(
        "unsupported",
        tg.client
            .invoke(&tl::functions::account::GetAuthorizations {}),
    )
    .await
    .expect_err("unsupported");
    assert!(err.is(fake_mtproto::METHOD_NOT_SUPPORTED), "{err:?}");

    assert!(
        within("resolve", tg.client.resolve_username("nobody_here"))
            .await
            .expect("USERNAME_NOT_OCCUPIED is Ok(None) in grammers")
            .is_none()
    );

    world.revoke_sessions(PHONE);
    let err = within("get_me", tg.client.get_me())
        .await
        .expect_err("revoked");
    match err {
        InvocationError::Rpc(rpc) => {
            assert_eq!((rpc.code, rpc.name.as_str()), (401, "SESSION_REVOKED"));
        }
        other => panic!("{other:?}"),
    }
    tg.quit().await;
}

#[tokio::test]
async fn uploads_and_send_media_reach_the_world() {
    let (_world, server, data) = setup().await;
    let tg = Tg::with_defaults(grammers_session(&server, &data));
    let bytes = vec![42u8; 700 * 1024]; // two parts
    let uploaded = within(
        "upload",
        tg.client
            .upload_stream(&mut bytes.as_slice(), bytes.len(), "blob.bin".into()),
    )
    .await
    .expect("upload");
    let sent = within(
        "send media",
        tg.client.send_message(
            saved_messages(),
            InputMessage::new().text("a file").document(uploaded),
        ),
    )
    .await
    .expect("send media");
    assert!(sent.media().is_some());
    assert_eq!(server.requests().get("upload.saveFilePart"), Some(&2));
    let mut iter = tg.client.iter_messages(saved_messages());
    let m = within("history", iter.next())
        .await
        .expect("history")
        .expect("the message");
    assert_eq!(m.text(), "a file");
    match m.media() {
        Some(grammers_client::media::Media::Document(d)) => {
            assert_eq!(d.name(), Some("blob.bin"));
            assert_eq!(d.size(), Some(bytes.len()));
        }
        other => panic!("expected a document, got {other:?}"),
    }
    tg.quit().await;
}
