//! `/health/live` and `/health/ready`, the probes for load balancers and
//! orchestrators, against a running instance: what turns each to 503, and
//! what leaves liveness alone.

use crate::helpers::{TestApp, spawn_app, spawn_app_with, wait_for_event};
use serde_json::{Value, json};
use std::time::Duration;
use tgvisor::supervisor::SupervisionEventKind;

/// A probe's status code and body.
async fn probe(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app.get(path).await;
    let code = res.status().as_u16();
    (code, res.json().await.unwrap())
}

/// Whether a probe body gives a reason containing `part`.
fn says(body: &Value, part: &str) -> bool {
    body["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r.as_str().unwrap().contains(part))
}

#[actix_rt::test]
async fn a_running_instance_is_live_and_ready_and_probes_are_not_cached() {
    let app = spawn_app().await;

    let res = app.get("/health/live").await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": "live", "reasons": []})
    );
    let (code, body) = probe(&app, "/health/ready").await;
    assert_eq!(
        (code, body),
        (200, json!({"status": "ready", "reasons": []}))
    );
    app.stop().await;
}

#[actix_rt::test]
async fn without_its_database_an_instance_is_not_ready_but_still_live() {
    // One pooled connection, which the test takes away.
    let app = spawn_app_with(|f| {
        f.merge(("database.max_connections", 1))
            .merge(("database.min_connections", 1))
            .merge(("health.check_timeout_ms", 200))
    })
    .await;
    let held = sea_orm::TransactionTrait::begin(&app.app_db).await.unwrap();

    let (code, ready) = probe(&app, "/health/ready").await;
    assert_eq!(code, 503, "{ready}");
    assert_eq!(ready["status"], "not_ready");
    assert!(
        says(&ready, "the database did not answer within 200 ms"),
        "{ready}"
    );
    let (code, live) = probe(&app, "/health/live").await;
    assert_eq!((code, &live["status"]), (200, &json!("live")), "{live}");

    held.rollback().await.unwrap();
    let (code, ready) = probe(&app, "/health/ready").await;
    assert_eq!(code, 200, "{ready}");
    app.stop().await;
}

#[actix_rt::test]
async fn a_graceful_shutdown_drains_ready_503_while_live_and_serving_then_a_second_signal_ends_it()
{
    let app = spawn_app_with(|f| f.merge(("health.drain_ms", 600_000))).await;
    let (_, token) = app.user("alice").await;

    app.shutdown.trigger();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let (code, body) = probe(&app, "/health/ready").await;
        if code == 503 {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(ready["status"], "not_ready");
    assert!(says(&ready, "shutting down"), "{ready}");
    // Draining: live, and still serving what comes.
    let (code, live) = probe(&app, "/health/live").await;
    assert_eq!(code, 200, "{live}");
    let res = app.get_auth("/api/v1/accounts", &token).await;
    assert_eq!(res.status().as_u16(), 200);
    // A second signal cuts the ten-minute drain short.
    tokio::time::timeout(Duration::from_secs(30), app.stop())
        .await
        .expect("the shutdown goes on after a second signal");
}

#[actix_rt::test]
async fn an_essential_actor_down_makes_an_instance_not_ready_but_still_live() {
    // A long backoff keeps the actor down long enough to look at.
    let app = spawn_app_with(|f| {
        f.merge(("supervision.backoff.base_ms", 60_000))
            .merge(("supervision.backoff.jitter", 0.0))
    })
    .await;
    let mut events = app.supervision.subscribe();
    assert_eq!(app.inject_panic("root/ws-hub").await.status().as_u16(), 202);
    wait_for_event(&mut events, |e| {
        e.actor == "root/ws-hub" && matches!(e.kind, SupervisionEventKind::Restarting { .. })
    })
    .await;

    let (code, ready) = probe(&app, "/health/ready").await;
    assert_eq!(code, 503, "{ready}");
    assert!(says(&ready, "root/ws-hub is not running"), "{ready}");
    let (code, live) = probe(&app, "/health/live").await;
    assert_eq!(code, 200, "{live}");
    app.stop().await;
}

#[actix_rt::test]
async fn once_the_root_supervisor_gives_up_the_process_is_not_live() {
    let app = spawn_app_with(|f| f.merge(("supervision.max_restarts", 0))).await;
    let mut events = app.supervision.subscribe();
    app.inject_panic("root/database").await;
    wait_for_event(&mut events, |e| {
        e.actor == "root" && matches!(e.kind, SupervisionEventKind::GaveUp { .. })
    })
    .await;

    let (code, live) = probe(&app, "/health/live").await;
    assert_eq!(code, 503, "{live}");
    assert_eq!(live["status"], "not_live");
    assert!(says(&live, "supervision gave up"), "{live}");
    let (code, ready) = probe(&app, "/health/ready").await;
    assert_eq!(code, 503, "{ready}");
    app.stop().await;
}
