//! The real binary, as an operator runs it.

use crate::helpers::TestDatabase;
use crate::helpers::binary::{
    fresh_secrets, import_from_fake, send_burst, sigkill, start_on_fake, tgvisor,
    wait_account_state, with_secrets,
};
use crate::helpers::events::wait_announced;
use std::time::Duration;
use tgvisor::config::random_key;
use tokio::io::{AsyncBufReadExt, BufReader};

#[actix_rt::test]
async fn sigterm_shuts_down_cleanly_and_query_strings_never_reach_the_log() {
    let data = tempfile::tempdir().unwrap();
    let (db, url) = TestDatabase::create(data.path()).await;
    let mut cmd = tgvisor("test", data.path());
    let mut child = with_secrets(&mut cmd)
        .env("TGVISOR__DATABASE__URL", &url)
        .env("TGVISOR__TELEMETRY__FORMAT", "json")
        .env("TGVISOR__TELEMETRY__FILTER", "info")
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut log = Vec::new();

    // Wait for the "listening" line and take the address from it.
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
            log.push(line);
            if v["message"] == "listening" {
                return v["address"].as_str().unwrap().to_owned();
            }
        }
        panic!("the service exited before listening: {log:?}");
    })
    .await
    .expect("the service listens within 30 s");

    let res = reqwest::get(format!("http://{address}/health?token=supersecret123"))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits within 15 s of SIGTERM")
        .unwrap();
    while let Some(line) = lines.next_line().await.unwrap() {
        log.push(line);
    }

    assert!(status.success(), "exit status {status:?}; log: {log:#?}");
    let all = log.join("\n");
    assert!(all.contains("shutdown complete"), "{all}");
    assert!(all.contains(r#""signal":"SIGTERM""#), "{all}");
    assert!(all.contains(r#""path":"/health""#), "{all}");
    assert!(
        !all.contains("supersecret123"),
        "a query string reached the log: {all}"
    );
    drop(db);
}

#[actix_rt::test]
async fn production_refuses_to_start_without_secrets() {
    let data = tempfile::tempdir().unwrap();

    let out = tgvisor("production", data.path()).output().await.unwrap();

    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("secrets.jwt is required in production"),
        "{stderr}"
    );
    assert!(
        stderr.contains("database.url is required in production"),
        "{stderr}"
    );
    assert!(
        !data.path().join("secrets.toml").exists(),
        "production must never generate secrets"
    );
}

#[actix_rt::test]
async fn a_typo_in_configuration_is_refused_with_the_key_named() {
    let data = tempfile::tempdir().unwrap();

    let out = tgvisor("test", data.path())
        .env("TGVISOR__SERVER__PROT", "80")
        .output()
        .await
        .unwrap();

    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("prot"), "{stderr}");
}

#[actix_rt::test]
async fn keys_rotate_reencrypts_every_session_and_reports_it() {
    use std::sync::Arc;
    use tgvisor::security::crypto::{KeyId, Keyring};
    let data = tempfile::tempdir().unwrap();
    let (db, url) = TestDatabase::create(data.path()).await;
    let (k1, k2) = (random_key(), random_key());
    let ring = |active: &str| {
        Keyring::new(
            KeyId::parse(active).unwrap(),
            vec![
                (
                    KeyId::parse("k1").unwrap(),
                    secrecy::SecretString::from(k1.clone()),
                ),
                (
                    KeyId::parse("k2").unwrap(),
                    secrecy::SecretString::from(k2.clone()),
                ),
            ],
        )
        .unwrap()
    };
    // Three sessions sealed with k1, written the way the service writes them.
    let conn = tgvisor::db::connect(&url, &test_db_settings())
        .await
        .unwrap();
    tgvisor::db::migrate(&conn).await.unwrap();
    let store = tgvisor::sessions::SessionStore::new(conn.clone(), Arc::new(ring("k1")));
    let accounts = seed_accounts(&conn, 3).await;
    for (i, id) in accounts.iter().enumerate() {
        store
            .rotate(*id, format!("session {i}").as_bytes())
            .await
            .unwrap();
    }

    let mut cmd = tgvisor("test", data.path());
    let out = with_secrets(&mut cmd)
        .env("TGVISOR__DATABASE__URL", &url)
        .env("TGVISOR__SECRETS__SESSION__ACTIVE", "k2")
        .env("TGVISOR__SECRETS__SESSION__KEYS__K1", &k1)
        .env("TGVISOR__SECRETS__SESSION__KEYS__K2", &k2)
        .args(["keys", "rotate", "--batch-size", "2"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(report["active_key"], "k2");
    assert_eq!(report["report"]["rewrapped"], 3);
    assert_eq!(report["report"]["batches"], 2);
    assert_eq!(report["before"]["k1"], 3);
    assert_eq!(report["after"]["k2"], 3);
    assert!(report["after"].get("k1").is_none());
    assert!(stderr.contains("batch 2"), "{stderr}");
    for secret in [&k1, &k2] {
        assert!(!stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()));
    }
    // Every session reads under the new key.
    let store = tgvisor::sessions::SessionStore::new(conn.clone(), Arc::new(ring("k2")));
    for (i, id) in accounts.iter().enumerate() {
        let loaded = store.load_active(*id).await.unwrap().unwrap();
        assert_eq!(&loaded.plaintext[..], format!("session {i}").as_bytes());
    }
    conn.close().await.unwrap();
    drop(db);
}

fn test_db_settings() -> tgvisor::config::DatabaseSettings {
    tgvisor::config::Settings::from_defaults(
        tgvisor::config::Environment::Test,
        figment::Figment::new(),
    )
    .unwrap()
    .database
}

/// A user with `n` accounts, inserted directly.
async fn seed_accounts(conn: &sea_orm::DatabaseConnection, n: usize) -> Vec<i64> {
    use sea_orm::{ActiveModelTrait, Set};
    use tgvisor::entities::{account, user};
    let now = chrono::Utc::now().fixed_offset();
    let owner = user::ActiveModel {
        username: Set("seed".into()),
        username_key: Set("seed".into()),
        email: Set("seed@example.com".into()),
        email_key: Set("seed@example.com".into()),
        password_hash: Set("x".into()),
        role: Set("user".into()),
        token_version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await
    .unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let a = account::ActiveModel {
            user_id: Set(owner.id),
            phone_digest: Set(format!("digest-{i}")),
            phone_hint: Set("+*****00".into()),
            telegram_user_id: Set(None),
            state: Set("stopped".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(conn)
        .await
        .unwrap();
        ids.push(a.id);
    }
    ids
}

#[actix_rt::test]
async fn sigkill_in_the_middle_of_a_burst_loses_nothing_and_duplicates_nothing() {
    const PHONE: &str = "+9996621777";
    /// At least this many messages; more while waiting for the moment to kill.
    const BURST: usize = 200;
    const MAX_BURST: usize = 3000;
    let world = tgvisor::telegram::sim::SimWorld::default();
    let server = fake_mtproto::FakeServer::start(world.clone())
        .await
        .expect("the fake MTProto server starts");
    let data = tempfile::tempdir().unwrap();
    let (db, url) = TestDatabase::create(data.path()).await;
    let secrets = fresh_secrets();
    let http = reqwest::Client::new();

    let (mut child, address) = start_on_fake(data.path(), &url, &secrets).await;
    let base = format!("http://{address}");
    let session = server.authorize(PHONE).expect("a sim number");
    let (token, account) = import_from_fake(&http, &base, PHONE, &session).await;
    let user = world.user_id(PHONE).unwrap();
    let sent_texts = || -> Vec<String> {
        world
            .dialog(PHONE, user)
            .into_iter()
            .filter(|m| m.text.starts_with("burst-"))
            .map(|m| m.text)
            .collect()
    };

    // The burst: 8 senders at once. The service is killed once half of it
    // was acknowledged and Telegram has seen some of it: acceptance and
    // delivery are both in full swing.
    let mut acked = std::collections::BTreeMap::new();
    let mut next = 0;
    let mut killed = false;
    while (next < BURST || !killed) && next < MAX_BURST {
        let batch: Vec<usize> = (next..next + 8).collect();
        next += batch.len();
        let sends = futures_util::future::join_all(
            batch
                .iter()
                .map(|i| send_burst(&http, &base, &token, account, *i)),
        );
        let kill = async {
            if !killed && acked.len() >= BURST / 2 && sent_texts().len() >= 5 {
                sigkill(&mut child).await;
                true
            } else {
                false
            }
        };
        let (answers, kill_now) = tokio::join!(sends, kill);
        killed |= kill_now;
        for (i, answer) in batch.into_iter().zip(answers) {
            if let Ok(id) = answer {
                acked.insert(i, id);
            }
        }
    }
    assert!(killed, "the kill happened mid-burst");
    let delivered_before_restart = sent_texts().len();
    assert!(
        delivered_before_restart < acked.len(),
        "the kill left acknowledged messages undelivered ({delivered_before_restart} of {})",
        acked.len()
    );

    // Restart on the same database: the account reconnects and its outbox drains.
    let (mut child, address) = start_on_fake(data.path(), &url, &secrets).await;
    let base = format!("http://{address}");
    wait_account_state(&http, &base, &token, account, "connected").await;
    // A client retries what was never acknowledged, with the same keys.
    let total = next;
    for i in 0..total {
        if let std::collections::btree_map::Entry::Vacant(slot) = acked.entry(i) {
            let id = send_burst(&http, &base, &token, account, i)
                .await
                .unwrap_or_else(|e| panic!("burst-{i} refused after the restart: {e}"));
            slot.insert(id);
        }
    }
    tokio::time::timeout(Duration::from_secs(60), async {
        while sent_texts().len() < total {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {total} delivered", sent_texts().len()));

    // Every message exactly once in Telegram, and each says `sent`.
    let mut texts = sent_texts();
    texts.sort();
    let mut expected: Vec<String> = (0..total).map(|i| format!("burst-{i}")).collect();
    expected.sort();
    assert_eq!(texts, expected, "each message once, none twice");
    // And each is announced once: the log has one `message.new` per
    // message, though the kill cut the burst's updates short.
    let conn = sea_orm::Database::connect(&url).await.unwrap();
    let announced = wait_announced(&conn, &format!("account:{account}"), &expected).await;
    let twice = announced.values().filter(|events| events.len() > 1).count();
    assert_eq!(twice, 0, "{twice} of {total} messages announced twice");
    conn.close().await.unwrap();
    // The fake drops a repeated random_id as Telegram does, so count what
    // reached it: at most the one send in flight at the kill went twice.
    let calls = world.calls()["messages.sendMessage"];
    assert!(
        (total as u64..=total as u64 + 1).contains(&calls),
        "{calls} sends for {total} messages"
    );
    for (i, id) in &acked {
        let view: serde_json::Value = http
            .get(format!("{base}/api/v1/accounts/{account}/messages/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(view["status"], "sent", "burst-{i}: {view}");
    }
    child.kill().await.unwrap();
    server.shutdown().await;
    drop(db);
}
