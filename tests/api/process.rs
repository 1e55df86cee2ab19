//! The real binary, as an operator runs it.

use crate::helpers::TestDatabase;
use std::process::Stdio;
use std::time::Duration;
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

#[actix_web::test]
async fn sigterm_shuts_down_cleanly_and_query_strings_never_reach_the_log() {
    let data = tempfile::tempdir().unwrap();
    let (db, url) = TestDatabase::create(data.path()).await;
    let mut child = tgvisor("test", data.path())
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
