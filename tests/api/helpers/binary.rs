//! The real binary as a child process: how the process tests start it,
//! configure it and drive it over HTTP.

use std::process::Stdio;
use std::time::Duration;
use tgvisor::config::random_key;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

pub fn tgvisor(env: &str, data_dir: &std::path::Path) -> Command {
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
pub fn with_secrets(cmd: &mut Command) -> &mut Command {
    cmd.env("TGVISOR__SECRETS__PASSWORD_PEPPER", random_key())
        .env("TGVISOR__SECRETS__JWT__ACTIVE", "k1")
        .env("TGVISOR__SECRETS__JWT__KEYS__K1", random_key())
        .env("TGVISOR__SECRETS__SESSION__ACTIVE", "k1")
        .env("TGVISOR__SECRETS__SESSION__KEYS__K1", random_key())
}

/// Starts the real binary on the grammers backend against `server`, with
/// Telegram's send limits lifted so a burst drains quickly; answers the
/// child and its address once it listens.
pub async fn start_on_fake(
    data: &std::path::Path,
    url: &str,
    secrets: &[(&str, String)],
) -> (tokio::process::Child, String) {
    let mut cmd = tgvisor("test", data);
    cmd.env("TGVISOR__DATABASE__URL", url)
        .env("TGVISOR__TELEMETRY__FORMAT", "json")
        .env("TGVISOR__TELEMETRY__FILTER", "info")
        .env("TGVISOR__TELEGRAM__BACKEND", "grammers")
        .env("TGVISOR__TELEGRAM__API_ID", "1")
        .env(
            "TGVISOR__TELEGRAM__API_HASH",
            "abcdef0123456789abcdef0123456789",
        )
        .env(
            "TGVISOR__RATE_LIMITS__TELEGRAM__MESSAGES_SENT__MAX",
            "100000",
        )
        .env(
            "TGVISOR__RATE_LIMITS__TELEGRAM__MESSAGES_SENT__PER_CHAT",
            "100000",
        )
        .env("TGVISOR__RATE_LIMITS__API__STANDARD__MAX", "100000");
    for (k, v) in secrets {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
            if v["message"] == "listening" {
                return v["address"].as_str().unwrap().to_owned();
            }
        }
        let mut err = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut err).await;
        panic!("the service exited before listening: {err}");
    })
    .await
    .expect("the service listens within 30 s");
    // Keep reading the log so the pipe never fills; errors go to the test output.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("\"level\":\"ERROR\"") || line.contains("WARN") {
                eprintln!("service: {line}");
            }
        }
    });
    (child, address)
}

/// Polls `GET /accounts/{id}` until `state` (bounded).
pub async fn wait_account_state(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    id: i64,
    state: &str,
) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let body: serde_json::Value = http
                .get(format!("{base}/api/v1/accounts/{id}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if body["state"] == state {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("account {id} never became {state}"));
}

/// Sends `burst-{i}` with idempotency key `k-{i}`: the message id if the
/// service acknowledged it (202), otherwise what happened.
pub async fn send_burst(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    account: i64,
    i: usize,
) -> Result<i64, String> {
    let res = http
        .post(format!("{base}/api/v1/accounts/{account}/messages"))
        .bearer_auth(token)
        .header("Idempotency-Key", format!("k-{i}"))
        .json(&serde_json::json!({ "chat": "me", "text": format!("burst-{i}") }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.map_err(|e| e.to_string())?;
    match (status, body["message_id"].as_i64()) {
        (202, Some(id)) => Ok(id),
        _ => Err(format!("{status}: {body}")),
    }
}

/// Fresh secrets for [`start_on_fake`], kept across restarts of one test.
pub fn fresh_secrets() -> Vec<(&'static str, String)> {
    vec![
        ("TGVISOR__SECRETS__PASSWORD_PEPPER", random_key()),
        ("TGVISOR__SECRETS__JWT__ACTIVE", "k1".to_owned()),
        ("TGVISOR__SECRETS__JWT__KEYS__K1", random_key()),
        ("TGVISOR__SECRETS__SESSION__ACTIVE", "k1".to_owned()),
        ("TGVISOR__SECRETS__SESSION__KEYS__K1", random_key()),
    ]
}

/// Registers and logs in `alice`, imports `phone`'s `session` (from the
/// fake server) and waits until the account is connected; answers (token,
/// account id).
pub async fn import_from_fake(
    http: &reqwest::Client,
    base: &str,
    phone: &str,
    session: &tgvisor::sessions::SessionData,
) -> (String, i64) {
    let res = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&serde_json::json!({
            "username": "alice", "email": "alice@example.com", "password": "password-alice"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": "alice", "password": "password-alice" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let res = http
        .post(format!("{base}/api/v1/accounts/import"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "phone": phone,
            "session": crate::helpers::accounts::telethon_session_for(session),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let account = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    wait_account_state(http, base, &token, account, "connected").await;
    (token, account)
}

/// SIGKILL: no shutdown code runs, as in a crash or an OOM kill.
pub async fn sigkill(child: &mut tokio::process::Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait().await;
}
