//! Health tells the service's faults from its clients': what one client
//! does to itself (bad frames, failed authentication, its own limits, its
//! own bad chats, a slow body) leaves every check healthy and raises no
//! alert, while the service's own failures still turn them.

use crate::helpers::accounts;
use crate::helpers::accounts::connected_account;
use crate::helpers::scrape::{sample_sum, scrape_until};
use crate::helpers::{TestApp, spawn_app_with};

use crate::helpers::ws::{authed, closed, connect, recv, send, ws_url};
use figment::Figment;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The monitor judges every 100 ms, every figure is judged from one event
/// on (so only the split between the clients' doing and the service's
/// keeps a check healthy), and the rule on lost connections fires on one;
/// the machine's own memory, CPU and disk never turn a check.
pub fn watched(f: Figment) -> Figment {
    f.merge(("health.sample_interval_ms", 100))
        .merge(("health.min_volume", 1))
        .merge(("health.window_ms", 60_000))
        .merge(("alerting.rules.connections.threshold", 1))
        .merge(("thresholds.resource.memory.warning", 1.0))
        .merge(("thresholds.resource.memory.critical", 1.0))
        .merge(("thresholds.resource.cpu.warning", 1.0))
        .merge(("thresholds.resource.cpu.critical", 1.0))
        .merge(("thresholds.resource.storage.warning", 1.0))
        .merge(("thresholds.resource.storage.critical", 1.0))
}

/// Waits until the monitor has judged two more reports (the first may have
/// been under way already), then until the alert router has handled what
/// they raised; answers every alert's fingerprint.
pub async fn alerts_after_two_reports(app: &TestApp) -> Vec<String> {
    let family = "tgvisor_health_reports_total";
    let before = sample_sum(&app.metrics().await, family, &[]);
    scrape_until(app, "two more health reports", |s| {
        sample_sum(s, family, &[]) >= before + 2.0
    })
    .await;
    // The router handles its queue in order: once it has answered this
    // (there is no alert 0), every raise queued before it is stored.
    assert!(app.alerts.ack(0, 0).await.is_err());
    app.alerts
        .list(None, 100)
        .await
        .expect("the alerts")
        .into_iter()
        .map(|a| a.fingerprint)
        .collect()
}

/// Waits until `tgvisor_outbox_messages_total{<label>}` reaches `n`: a
/// message's event is published as its row is stored, its count follows.
async fn outbox_counted(app: &TestApp, label: &str, n: f64) {
    let family = "tgvisor_outbox_messages_total";
    scrape_until(app, label, |s| sample_sum(s, family, &[label]) >= n).await;
}

/// The check `name` of `/health`, with the endpoint's status code.
pub async fn check(app: &TestApp, name: &str) -> (u16, Value) {
    let res = app.get("/health").await;
    let code = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (code, body["checks"][name].clone())
}

#[actix_rt::test]
async fn client_mistakes_on_websockets_leave_health_healthy_and_raise_no_alert() {
    let app = spawn_app_with(watched).await;
    let (_, token) = app.user("alice").await;

    // Unauthenticated, one binary frame: an error frame, then 4001.
    let mut ws = connect(&app, None).await;
    ws.send(Message::binary(vec![0u8, 1, 2])).await.unwrap();
    let (code, frames) = closed(&mut ws).await;
    assert_eq!(code, Some(4001));
    assert_eq!(frames[0]["code"], "invalid_frame");
    // Unauthenticated, text that is not a frame.
    let mut ws = connect(&app, None).await;
    ws.send(Message::text("hello?")).await.unwrap();
    assert_eq!(closed(&mut ws).await.0, Some(4001));
    // A token that is not one.
    let mut ws = connect(&app, Some("not-a-token")).await;
    assert_eq!(closed(&mut ws).await.0, Some(4001));
    // Authenticated: bad frames, a topic that is no topic, then a frame
    // over the size limit (4008).
    let (mut ws, _) = authed(&app, &token).await;
    ws.send(Message::binary(vec![9u8])).await.unwrap();
    assert_eq!(recv(&mut ws).await["code"], "invalid_frame");
    ws.send(Message::text("{")).await.unwrap();
    assert_eq!(recv(&mut ws).await["code"], "invalid_frame");
    send(
        &mut ws,
        json!({"type": "subscribe", "id": 1, "topic": "nope"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["code"], "invalid_topic");
    send(&mut ws, json!({"type": "ping", "id": "x".repeat(5000)})).await;
    assert_eq!(closed(&mut ws).await.0, Some(4008));
    // A client that vanishes without a close frame.
    let request = ws_url(&app).into_client_request().unwrap();
    let (gone, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    drop(gone);

    // Counted, as the clients' doing.
    scrape_until(&app, "four disconnects of the clients' doing", |s| {
        sample_sum(s, "tgvisor_ws_disconnects_total", &[r#"fault="client""#]) >= 4.0
            && sample_sum(s, "tgvisor_ws_disconnects_total", &[]) >= 5.0
    })
    .await;

    let (status, websocket) = check(&app, "websocket").await;
    assert_eq!(status, 200, "{websocket}");
    assert_eq!(websocket["status"], "healthy", "{websocket}");
    let res = app.get("/health/websocket").await;
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    let m = &body["metrics"];
    assert_eq!(
        (m["error_rate"].as_f64(), m["reconnect_rate"].as_f64()),
        (Some(0.0), Some(0.0)),
        "{body}"
    );
    assert!(m["client_error_rate"].as_f64().unwrap() > 0.5, "{body}");
    assert!(
        m["client_disconnect_rate"].as_f64().unwrap() >= 0.8,
        "{body}"
    );

    let alerts = alerts_after_two_reports(&app).await;
    assert!(
        !alerts
            .iter()
            .any(|f| f == "health:websocket" || f == "rule:connections"),
        "{alerts:?}"
    );
    let scrape = app.metrics().await;
    assert!(
        scrape.contains(r#"tgvisor_health_status{component="websocket"} 0"#),
        "{scrape}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn a_users_sends_to_a_chat_that_does_not_exist_leave_telegram_healthy() {
    let app = spawn_app_with(watched).await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, "+9996631237").await;

    let res = accounts::send(
        &app,
        &token,
        account,
        &json!({"chat": "me", "text": "hi"}),
        None,
    )
    .await;
    let id = res.json::<Value>().await.unwrap()["message_id"]
        .as_i64()
        .unwrap();
    accounts::wait_status(&app, account, id, "sent").await;
    for i in 0..3 {
        let body = json!({"chat": "@nobody_here", "text": format!("hello {i}")});
        let res = accounts::send(&app, &token, account, &body, None).await;
        assert_eq!(res.status().as_u16(), 202);
        let id = res.json::<Value>().await.unwrap()["message_id"]
            .as_i64()
            .unwrap();
        let failed = accounts::wait_status(&app, account, id, "failed").await;
        assert_eq!(failed["error"], "peer_invalid");
    }
    // Counted once the message's last transition is stored.
    outbox_counted(&app, r#"status="failed""#, 3.0).await;

    let (status, telegram) = check(&app, "telegram").await;
    assert_eq!(status, 200, "{telegram}");
    assert_eq!(telegram["status"], "healthy", "{telegram}");
    assert_eq!(telegram["message_failure_rate"], 0.0, "{telegram}");
    assert_eq!(
        telegram["messages"],
        json!({"sent": 1, "failed": 0, "failed_by_request": 3}),
        "{telegram}"
    );
    let scrape = app.metrics().await;
    assert_eq!(
        sample_sum(
            &scrape,
            "tgvisor_outbox_failures_total",
            &[r#"fault="client""#, r#"reason="peer_invalid""#]
        ),
        3.0
    );
    let alerts = alerts_after_two_reports(&app).await;
    assert!(!alerts.iter().any(|f| f == "health:telegram"), "{alerts:?}");
    app.stop().await;
}

#[actix_rt::test]
async fn a_user_over_its_own_api_limit_leaves_rate_limits_healthy() {
    let app = spawn_app_with(|f| watched(f).merge(("rate_limits.api.standard.max", 3))).await;
    let (_, alice) = app.user("alice").await;

    let mut refused = 0;
    for _ in 0..10 {
        if app.get_auth("/api/v1/accounts", &alice).await.status() == 429 {
            refused += 1;
        }
    }
    assert_eq!(refused, 7);

    let (status, limits) = check(&app, "rate_limits").await;
    assert_eq!(status, 200, "{limits}");
    assert_eq!(limits["status"], "healthy", "{limits}");
    assert_eq!(limits["clients"]["refused"], 7, "{limits}");
    assert_eq!(limits["flood_waits_last_hour"], 0, "{limits}");
    let alerts = alerts_after_two_reports(&app).await;
    assert!(
        !alerts.iter().any(|f| f == "health:rate_limits"),
        "{alerts:?}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn a_request_whose_client_sends_its_body_slowly_does_not_make_api_slow() {
    let app = spawn_app_with(|f| {
        watched(f)
            .merge(("thresholds.response_time.api.p95_ms", 1000))
            .merge(("thresholds.response_time.api.p99_ms", 1000))
            .merge(("thresholds.response_time.api.max_ms", 1000))
    })
    .await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, "+9996631238").await;

    // Half the JSON, 2.5 s of silence, the rest.
    let pause = Duration::from_millis(2500);
    let body = r#"{"chat": "me", "text": "slowly"}"#;
    let (head, tail) = body.split_at(12);
    let chunks = futures_util::stream::iter([head.to_owned(), tail.to_owned()])
        .enumerate()
        .then(move |(i, chunk)| async move {
            if i > 0 {
                tokio::time::sleep(pause).await;
            }
            Ok::<_, std::io::Error>(chunk)
        });
    let started = std::time::Instant::now();
    let res = app
        .client
        .post(app.url(&format!("/api/v1/accounts/{account}/messages")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    assert!(started.elapsed() >= pause);

    let (status, api) = check(&app, "api").await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["status"], "healthy", "{api}");
    assert!(
        api["slowest_at_most_ms"].as_f64().unwrap() < 1000.0,
        "{api}"
    );
    let alerts = alerts_after_two_reports(&app).await;
    assert!(!alerts.iter().any(|f| f == "health:api"), "{alerts:?}");
    app.stop().await;
}

#[actix_rt::test]
async fn one_failure_below_the_minimum_volume_is_shown_not_judged_and_a_real_rate_is() {
    let app = spawn_app_with(|f| {
        watched(f)
            .merge(("health.min_volume", 5))
            // One timeout fails a message at once.
            .merge(("outbox.max_attempts", 1))
            .merge(("telegram.request_timeout_ms", 300))
    })
    .await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, "+9996631239").await;

    // Telegram does not answer one send in time: the service's failure.
    app.world.set_latency(Duration::from_secs(2));
    let res = accounts::send(
        &app,
        &token,
        account,
        &json!({"chat": "me", "text": "late"}),
        None,
    )
    .await;
    let id = res.json::<Value>().await.unwrap()["message_id"]
        .as_i64()
        .unwrap();
    let failed = accounts::wait_status(&app, account, id, "failed").await;
    assert_eq!(failed["error"], "timeout");
    app.world.set_latency(Duration::ZERO);
    outbox_counted(&app, r#"status="failed""#, 1.0).await;

    // One of one: 100 %, but one message is no failure rate.
    let (status, telegram) = check(&app, "telegram").await;
    assert_eq!(status, 200, "{telegram}");
    assert_eq!(telegram["status"], "healthy", "{telegram}");
    assert_eq!(telegram["message_failure_rate"], 1.0, "{telegram}");

    // Four more go through: 1 of 5 failed, 20 %, over the 5 % line with
    // enough messages behind it.
    for i in 0..4 {
        let body = json!({"chat": "me", "text": format!("fine {i}")});
        let res = accounts::send(&app, &token, account, &body, None).await;
        let id = res.json::<Value>().await.unwrap()["message_id"]
            .as_i64()
            .unwrap();
        accounts::wait_status(&app, account, id, "sent").await;
    }
    outbox_counted(&app, r#"status="sent""#, 4.0).await;
    let (status, telegram) = check(&app, "telegram").await;
    assert_eq!(status, 503, "{telegram}");
    assert_eq!(telegram["status"], "degraded", "{telegram}");
    assert!(
        telegram["reason"]
            .as_str()
            .unwrap()
            .contains("20.0 % of messages failed"),
        "{telegram}"
    );
    let alerts = alerts_after_two_reports(&app).await;
    assert!(alerts.iter().any(|f| f == "health:telegram"), "{alerts:?}");
    app.stop().await;
}
