//! The real binary, as an operator runs it.

use crate::helpers::TestDatabase;
use std::process::Stdio;
use std::time::Duration;
use tgvisor::config::random_key;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn tgvisor(env: &str, data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tgvisor"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TGVISOR_ENV", env)
        .env(
            "TGVISOR_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        )
        .env("TGVISOR__DATA_DIR", data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Fresh secrets in the environment, as production passes them.
fn with_secrets(cmd: &mut Command) -> &mut Command {
    cmd.env("TGVISOR__SECRETS__PASSWORD_PEPPER", random_key())
        .env("TGVISOR__SECRETS__JWT__ACTIVE", "k1")
        .env("TGVISOR__SECRETS__JWT__KEYS__K1", random_key())
        .env("TGVISOR__SECRETS__SESSION__ACTIVE", "k1")
        .env("TGVISOR__SECRETS__SESSION__KEYS__K1", random_key())
}

#[actix_web::test]
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

#[actix_web::test]
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

#[actix_web::test]
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

#[actix_web::test]
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
