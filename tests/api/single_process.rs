//! One process per embedded database: a second `tgvisor serve` on the same
//! data directory refuses to start instead of driving the same Telegram
//! sessions a second time.

use crate::helpers::binary::{tgvisor, with_secrets};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

#[actix_rt::test]
async fn a_second_process_on_the_same_data_directory_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = tgvisor("test", data.path());
    let mut first = with_secrets(&mut cmd)
        .env("TGVISOR__SERVER__PORT", "0")
        .env("TGVISOR__TELEMETRY__FORMAT", "json")
        .env("TGVISOR__TELEMETRY__FILTER", "info")
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
            if v["message"] == "listening" {
                return v["address"].as_str().unwrap().to_owned();
            }
        }
        panic!("the first process exited before listening");
    })
    .await
    .expect("the first process listens within 30 s");

    let mut cmd = tgvisor("test", data.path());
    let second = tokio::time::timeout(
        Duration::from_secs(30),
        with_secrets(&mut cmd)
            .env("TGVISOR__SERVER__PORT", "0")
            .output(),
    )
    .await
    .expect("the second process ends by itself")
    .unwrap();

    assert!(!second.status.success(), "the second process ran");
    let stderr = String::from_utf8_lossy(&second.stderr);
    let pid = first.id().unwrap();
    assert!(
        stderr.contains(&format!("another tgvisor (pid {pid}) is already serving")),
        "{stderr}"
    );
    // The first one is untouched and still answers.
    let res = reqwest::get(format!("http://{address}/health"))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let db = data.path().join("tgvisor.db");
        let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the database file is readable by others");
    }
    first.kill().await.unwrap();
}
