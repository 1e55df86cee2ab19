//! Every Telegram message is announced once across a crash: the real
//! binary on the grammers backend against the loopback fake MTProto server,
//! killed with SIGKILL after announcing messages and long before a
//! periodic save of the update state, then restarted to catch up.

use crate::helpers::TestDatabase;
use crate::helpers::binary::{fresh_secrets, import_from_fake, send_burst, sigkill, start_on_fake};
use crate::helpers::events::{texts, wait_announced};
use std::sync::Arc;
use std::time::Duration;
use tgvisor::events::StoredEvent;
use tgvisor::sessions::SessionData;
use tgvisor::telegram::sim::{ECHO_USER_ID, SimWorld};
use tgvisor::telegram::{Backend, SessionSink};

const PHONE_WITH_HISTORY: &str = "+9996621555";

/// Gives the account a message before tgvisor knows it, as a real account
/// has history: its update state is then not pts 0, which grammers reads as
/// no state at all (and would fetch afresh, hiding a catch-up that starts
/// too early).
async fn with_history(server: &fake_mtproto::FakeServer, session: &SessionData) {
    struct NoSink;
    #[async_trait::async_trait]
    impl SessionSink for NoSink {
        async fn save(&self, _: &SessionData) -> anyhow::Result<()> {
            Ok(())
        }
    }
    let settings = tgvisor::config::Settings::from_defaults(
        tgvisor::config::Environment::Test,
        figment::Figment::new(),
    )
    .unwrap();
    let backend = tgvisor::telegram::grammers::GrammersBackend::new(&settings.telegram);
    let mut conn = backend
        .connect(session.clone(), None, Arc::new(NoSink))
        .await
        .expect("connects to the fake");
    server
        .world()
        .deliver_from(ECHO_USER_ID, PHONE_WITH_HISTORY, "history")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(item) = conn.updates.recv().await {
            if item.update.is_some() {
                return;
            }
        }
        panic!("the update stream ended");
    })
    .await
    .expect("the message arrives");
    conn.client.disconnect().await;
}

/// Waits until an event after `after` on `topic` matches `pred` (bounded).
async fn wait_logged(
    conn: &sea_orm::DatabaseConnection,
    topic: &str,
    after: i64,
    pred: impl Fn(&StoredEvent) -> bool,
) -> StoredEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events = tgvisor::events::since(conn, topic, after, 10_000)
            .await
            .expect("reading the event log");
        if let Some(e) = events.into_iter().find(|e| pred(e)) {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no matching event on {topic} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn messages_announced_before_a_sigkill_are_not_announced_again_after_the_restart() {
    const PHONE: &str = PHONE_WITH_HISTORY;
    const INCOMING: usize = 12;
    const OUTGOING: usize = 12;
    let world = SimWorld::default();
    let server = fake_mtproto::FakeServer::start(world.clone())
        .await
        .expect("the fake MTProto server starts");
    let data = tempfile::tempdir().unwrap();
    let (db, url) = TestDatabase::create(data.path()).await;
    // No periodic save of the update state can happen during the test (it
    // was the only save before the fix, and is now the one for updates that
    // announce nothing): the catch-up after the kill starts from whatever
    // was committed with the events themselves.
    let mut config = fresh_secrets();
    config.push((
        "TGVISOR__TELEGRAM__UPDATE_STATE_SYNC_INTERVAL_MS",
        "3600000".to_owned(),
    ));
    let http = reqwest::Client::new();
    let (mut child, address) = start_on_fake(data.path(), &url, &config).await;
    let base = format!("http://{address}");
    let session = server.authorize(PHONE).expect("a sim number");
    with_history(&server, &session).await;
    let (token, account) = import_from_fake(&http, &base, PHONE, &session).await;
    let topic = format!("account:{account}");
    let conn = sea_orm::Database::connect(&url).await.unwrap();

    // Incoming messages pushed over MTProto, and outgoing ones sent through
    // the API (their updates come back in the sends' answers), interleaved.
    let mut expected = Vec::new();
    for i in 0..INCOMING.max(OUTGOING) {
        if i < INCOMING {
            let text = format!("incoming-{i}");
            world.deliver_from(ECHO_USER_ID, PHONE, &text).unwrap();
            expected.push(text);
        }
        if i < OUTGOING {
            send_burst(&http, &base, &token, account, i).await.unwrap();
            expected.push(format!("burst-{i}"));
        }
    }
    let before = wait_announced(&conn, &topic, &expected).await;
    assert_eq!(texts(&before).len(), expected.len(), "{:?}", texts(&before));

    let head = tgvisor::events::head(&conn, &topic).await.unwrap();
    sigkill(&mut child).await;
    let (mut child, address) = start_on_fake(data.path(), &url, &config).await;
    let base = format!("http://{address}");
    // Connected again: the account row still says so from before the
    // kill, so wait for the new process to say it.
    wait_logged(&conn, &topic, head, |e| {
        e.kind == "account.state" && e.data["state"] == "connected"
    })
    .await;
    // Telegram hands out updates in order: once a message pushed after the
    // restart is announced, the catch-up before it is done.
    world
        .deliver_from(ECHO_USER_ID, PHONE, "after the restart")
        .unwrap();
    expected.push("after the restart".to_owned());
    let after = wait_announced(&conn, &topic, &expected).await;

    let twice: Vec<_> = after
        .iter()
        .filter(|(_, events)| events.len() > 1)
        .map(|((chat, id), events)| {
            let offsets: Vec<i64> = events.iter().map(|e| e.offset).collect();
            format!("chat {chat} message {id} at offsets {offsets:?}")
        })
        .collect();
    assert!(twice.is_empty(), "announced more than once: {twice:#?}");
    expected.sort();
    assert_eq!(texts(&after), expected, "each message exactly once");
    // And not thanks to the dedupe keys alone: the catch-up started right
    // after what was announced, so no repeat even reached the log.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"tgvisor_events_duplicates_dropped_total{kind="message.new"} 0"#),
        "{metrics}"
    );
    child.kill().await.unwrap();
    conn.close().await.unwrap();
    server.shutdown().await;
    drop(db);
}
