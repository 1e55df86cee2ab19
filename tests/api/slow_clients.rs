//! Clients that hold connections: a body that stops arriving is answered
//! 408 and its connection closed, and one address cannot take more than
//! its share of connections, so the service keeps answering others.

use crate::helpers::{TestApp, spawn_app_with};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the peer closes; answers what came.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut got)).await;
    match read {
        Ok(Ok(_)) | Ok(Err(_)) => String::from_utf8_lossy(&got).into_owned(),
        Err(_) => panic!(
            "the connection stayed open: {}",
            String::from_utf8_lossy(&got)
        ),
    }
}

fn address(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

#[actix_rt::test]
async fn a_stalled_body_is_408_and_one_address_cannot_take_every_connection() {
    let app = spawn_app_with(|f| {
        f.merge(("server.body_timeout_ms", 1000))
            .merge(("server.max_connections_per_address", 4))
    })
    .await;

    // Four connections from 127.0.0.1 send headers and part of a body.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(address(&app)).await.unwrap();
        s.write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"username\":",
        )
        .await
        .unwrap();
        stalled.push(s);
    }
    // A fifth from the same address is closed without an answer...
    let mut fifth = TcpStream::connect(address(&app)).await.unwrap();
    let _ = fifth
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    assert_eq!(read_to_close(&mut fifth).await, "");
    // ...while another address is served.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let res = other.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);

    // The stalled bodies run out of time: 408 body_timeout, then closed.
    for mut s in stalled {
        let answer = read_to_close(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("body_timeout"), "{answer}");
    }
    // Their places are given back: 127.0.0.1 is served again (whatever
    // /health then says of the slow requests).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match app.client.get(app.url("/health")).send().await {
            Ok(_) => break,
            other => assert!(
                std::time::Instant::now() < deadline,
                "127.0.0.1 is still refused: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = app.metrics().await;
    let refused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tgvisor_http_connections_refused_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(refused >= 1, "{refused}");
    app.stop().await;
}

#[actix_rt::test]
async fn a_body_that_arrives_slowly_but_in_time_is_served() {
    let app = spawn_app_with(|f| f.merge(("server.body_timeout_ms", 5000))).await;
    let mut s = TcpStream::connect(address(&app)).await.unwrap();
    let body = br#"{"username":"nobody","password":"whatever-long"}"#;
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(8) {
        s.write_all(chunk).await.unwrap();
        tokio::task::yield_now().await;
    }
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    app.stop().await;
}
