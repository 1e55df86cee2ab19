//! The long-lived loops that used to run as bare spawned tasks are
//! supervised children now: an injected panic restarts each one (counted
//! in tgvisor_actor_restarts_total and /health), and the new generation
//! does the job, with nothing it was trusted with lost.

use crate::helpers::accounts::{connected_account, send};
use crate::helpers::alerts::{Receiver, routed};
use crate::helpers::{TestApp, is_started, spawn_app, spawn_app_with, wait_for_event};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tgvisor::alerts::{NewAlert, Severity};
use tgvisor::supervisor::SupervisionEventKind;
use tgvisor::telegram::sim::ECHO_USER_ID;

/// The panic restart of `actor` shows in the metrics and in /health.
async fn restart_is_counted(app: &TestApp, actor: &str) {
    let scrape = app.metrics().await;
    let want = format!(r#"tgvisor_actor_restarts_total{{actor="{actor}",reason="panic"}} 1"#);
    assert!(scrape.contains(&want), "no {want} in:\n{scrape}");
    let health: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health["checks"]["supervision"]["restarts"], 1, "{health}");
}

/// Waits (10 s at most) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} never happened"));
}

#[actix_rt::test]
async fn a_panicking_outbox_writer_is_restarted_and_no_accepted_send_is_lost() {
    // Batches of 8: the writer holds at most 8 requests when it panics.
    let app = spawn_app_with(|f| f.merge(("outbox.max_batch", 8))).await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, "+9996627200").await;
    let mut events = app.supervision.subscribe();

    // Sends in flight while the writer panics: each is either accepted and
    // stored, or refused with a retryable 503; none is acknowledged and lost.
    let sends = (0..60).map(|i| {
        let body = json!({ "chat": "me", "text": format!("burst {i}") });
        let (app, token) = (&app, &token);
        async move { send(app, token, account, &body, None).await }
    });
    let (responses, injected) =
        futures_util::join!(join_all(sends), app.inject_panic("root/outbox-writer"));
    assert_eq!(injected.status().as_u16(), 202);
    wait_for_event(&mut events, is_started("root/outbox-writer", 2)).await;

    let (mut accepted, mut refused) = (Vec::new(), 0);
    for res in responses {
        match res.status().as_u16() {
            202 => {
                let body: Value = res.json().await.unwrap();
                accepted.push(body["message_id"].as_i64().unwrap());
            }
            503 => {
                assert!(res.headers().contains_key("retry-after"));
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"]["code"], "unavailable");
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // Only the batch in hand can be refused: what waited in the queue was
    // written by the next writer.
    assert!(refused <= 8, "{refused} sends refused");
    for id in &accepted {
        let path = format!("/api/v1/accounts/{account}/messages/{id}");
        let res = app.get_auth(&path, &token).await;
        assert_eq!(
            res.status().as_u16(),
            200,
            "accepted message {id} is stored"
        );
    }
    // The new writer takes sends.
    let after = json!({ "chat": "me", "text": "after the restart" });
    assert_eq!(
        send(&app, &token, account, &after, None)
            .await
            .status()
            .as_u16(),
        202
    );
    restart_is_counted(&app, "root/outbox-writer").await;
    app.stop().await;
}

#[actix_rt::test]
async fn the_outbox_housekeeping_comes_back_after_a_panic() {
    let app = spawn_app().await;
    app.restart_actor("root/outbox-housekeeping").await;
    restart_is_counted(&app, "root/outbox-housekeeping").await;
    app.stop().await;
}

#[actix_rt::test]
async fn a_restarted_error_tracker_tracks_the_next_crash() {
    let app = spawn_app().await;
    let admin = app.admin("root").await;
    app.restart_actor("root/error-tracker").await;
    restart_is_counted(&app, "root/error-tracker").await;

    app.restart_actor("root/rate-limiter").await;
    let groups: Vec<Value> = app
        .get_auth("/api/v1/errors", &admin)
        .await
        .json()
        .await
        .unwrap();
    let tracked: Vec<&Value> = groups
        .iter()
        .filter(|g| g["kind"] == "actor_panic")
        .flat_map(|g| g["samples"].as_array().unwrap())
        .map(|s| &s["context"])
        .collect();
    assert!(
        tracked.contains(&&json!("root/rate-limiter")),
        "the crash after the tracker's restart is tracked: {groups:?}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn a_restarted_release_task_still_detaches_accounts_that_ended() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let phone = "+9996627201";
    let account = connected_account(&app, &token, phone).await;
    let path = format!("root/sessions/account-{account}");
    app.restart_actor("root/account-releases").await;
    restart_is_counted(&app, "root/account-releases").await;

    // A revoked session ends the actor for good: it is removed from the
    // account supervisor (its status and metric series go with it).
    app.world.revoke_sessions(phone);
    app.wait_state(account, "revoked", 0).await;
    until("the actor's removal", || {
        app.supervision.status(&path).is_none()
    })
    .await;
    app.stop().await;
}

#[actix_rt::test]
async fn a_restarted_give_up_task_still_marks_a_crashing_account_failed() {
    let app = spawn_app_with(|f| {
        f.merge(("telegram.account_restarts.max_restarts", 0))
            .merge(("telegram.account_restarts.backoff_base_ms", 10))
            .merge(("telegram.account_restarts.backoff_cap_ms", 10))
    })
    .await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, "+9996627202").await;
    app.restart_actor("root/account-give-ups").await;
    restart_is_counted(&app, "root/account-give-ups").await;

    let last = app.wait_state(account, "connected", 0).await.offset;
    let path = format!("root/sessions/account-{account}");
    assert!(
        app.supervision
            .inject_panic(&path, "bug in the account actor")
    );
    let failed = app.wait_state(account, "failed", last).await;
    assert_eq!(failed.data["reason"], "crashed too often");
    app.stop().await;
}

#[actix_rt::test]
async fn a_topic_writer_that_panics_comes_back_and_keeps_what_was_queued() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let phone = "+9996627203";
    let account = connected_account(&app, &token, phone).await;
    let topic = format!("account:{account}");
    let writer = format!("root/event-writers/{topic}");
    let mut events = app.supervision.subscribe();
    assert!(app.supervision.inject_panic(&writer, "bug in the writer"));
    // Published while the writer is down: queued, written by the next one.
    app.world
        .deliver_from(ECHO_USER_ID, phone, "while the writer restarts")
        .unwrap();
    wait_for_event(&mut events, |e| {
        e.actor == writer && matches!(e.kind, SupervisionEventKind::Started { generation: 2 })
    })
    .await;
    let event = app
        .wait_event(&topic, |e| {
            e.kind == "message.new" && e.data["message"]["text"] == "while the writer restarts"
        })
        .await;
    assert_eq!(event.data["message"]["sender_id"], ECHO_USER_ID);
    let scrape = app.metrics().await;
    let want = format!(r#"tgvisor_actor_restarts_total{{actor="{writer}",reason="panic"}} 1"#);
    assert!(scrape.contains(&want), "no {want} in:\n{scrape}");
    app.stop().await;
}

#[actix_rt::test]
async fn the_alert_routers_loop_comes_back_after_a_panic_and_routes_again() {
    let mut receiver = Receiver::start().await;
    let app = spawn_app_with(|f| routed(f, &receiver.url)).await;
    // The router's loop runs in its actor's context: a panic there is the
    // actor's, restarted like it.
    app.restart_actor("root/alert-router").await;
    restart_is_counted(&app, "root/alert-router").await;

    app.alerts.raise(NewAlert {
        fingerprint: "after-restart".to_owned(),
        name: "after_restart_alert".to_owned(),
        severity: Severity::Medium,
        summary: "raised after the router's restart".to_owned(),
        labels: BTreeMap::new(),
    });
    let (body, _) = receiver.next_to("/webhook").await;
    assert_eq!(body["status"], "firing");
    let names: Vec<&str> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(names.contains(&"after_restart_alert"), "{body}");
    app.stop().await;
    receiver.server.stop(true).await;
}
