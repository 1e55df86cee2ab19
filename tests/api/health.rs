use crate::helpers::{spawn_app, spawn_app_with, wait_for_event};
use tgvisor::supervisor::SupervisionEventKind;

#[actix_rt::test]
async fn health_is_healthy_on_a_fresh_instance() {
    let app = spawn_app().await;

    let res = app.get("/health").await;

    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["checks"]["supervision"]["status"], "healthy");
    assert_eq!(body["checks"]["database"]["status"], "healthy");
    assert_eq!(body["checks"]["database"]["backend"], app.db.backend());
    app.stop().await;
}

#[actix_rt::test]
async fn health_is_degraded_503_while_an_essential_actor_restarts() {
    // A long backoff keeps the actor down long enough to look at.
    let app = spawn_app_with(|f| {
        f.merge(("supervision.backoff.base_ms", 60_000))
            .merge(("supervision.backoff.jitter", 0.0))
    })
    .await;
    let mut events = app.supervision.subscribe();

    assert_eq!(
        app.inject_panic("root/database").await.status().as_u16(),
        202
    );
    wait_for_event(&mut events, |e| {
        matches!(e.kind, SupervisionEventKind::Restarting { .. })
    })
    .await;
    let res = app.get("/health").await;

    assert_eq!(res.status().as_u16(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(
        body["checks"]["supervision"]["not_running"][0],
        "root/database"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn health_is_unhealthy_once_the_root_gives_up_and_metrics_still_answer() {
    let app = spawn_app_with(|f| f.merge(("supervision.max_restarts", 0))).await;
    let mut events = app.supervision.subscribe();

    app.inject_panic("root/database").await;
    wait_for_event(&mut events, |e| {
        e.actor == "root" && matches!(e.kind, SupervisionEventKind::GaveUp { .. })
    })
    .await;
    let res = app.get("/health").await;

    assert_eq!(res.status().as_u16(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unhealthy");
    let failure = body["checks"]["supervision"]["failure"].as_str().unwrap();
    assert!(failure.contains("root/database"), "{failure}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("tgvisor_supervision_failed 1"),
        "{metrics}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn every_component_is_checked_and_the_detailed_view_is_for_admins() {
    let app = spawn_app().await;
    let res = app.get("/health").await;
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    let checks = body["checks"].as_object().unwrap();
    let mut names: Vec<&str> = checks.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "api",
            "database",
            "rate_limits",
            "resources",
            "supervision",
            "telegram",
            "websocket"
        ]
    );
    assert!(checks.values().all(|c| c["status"] == "healthy"), "{body}");
    let telegram: serde_json::Value = app.get("/health/telegram").await.json().await.unwrap();
    assert_eq!(telegram["status"], "healthy");
    assert_eq!(telegram["metrics"]["flood_waits_last_hour"], 0);
    let database = app.get("/health/database").await;
    assert_eq!(database.status().as_u16(), 200);
    let database: serde_json::Value = database.json().await.unwrap();
    assert_eq!(
        database["metrics"]["pool"]["max"],
        app.settings.database.max_connections
    );
    // Detailed: admins only.
    assert_eq!(app.get("/health/detailed").await.status().as_u16(), 401);
    let (_, user) = app.user("mallory").await;
    assert_eq!(
        app.get_auth("/health/detailed", &user)
            .await
            .status()
            .as_u16(),
        403
    );
    let admin = app.admin("root").await;
    let res = app.get_auth("/health/detailed", &admin).await;
    assert_eq!(res.status().as_u16(), 200);
    let detailed: serde_json::Value = res.json().await.unwrap();
    assert!(detailed["uptime_secs"].is_u64());
    assert!(
        detailed["memory"]["rss_bytes"].as_u64().unwrap_or(0) > 0 || !cfg!(target_os = "linux")
    );
    assert_eq!(
        detailed["thresholds"]["telegram"]["flood_wait"]["warning"],
        5.0
    );
    assert_eq!(detailed["checks"].as_object().unwrap().len(), 7);
    assert!(
        detailed["alerts"]["firing"].as_array().unwrap().is_empty(),
        "{detailed}"
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains(r#"tgvisor_health_status{component="database"} 0"#));
    app.stop().await;
}

#[actix_rt::test]
async fn a_check_that_hangs_is_unhealthy_and_the_endpoint_still_answers() {
    // One connection in the pool, held by the test: the ping waits for it.
    let app = spawn_app_with(|f| {
        f.merge(("database.max_connections", 1))
            .merge(("database.min_connections", 1))
            .merge(("health.check_timeout_ms", 200))
            // More than the pool can ever have free (pool figures are a
            // moment's snapshot, this makes the verdict certain).
            .merge(("thresholds.connection_pool.database.min_available", 100))
    })
    .await;
    let held = sea_orm::TransactionTrait::begin(&app.app_db).await.unwrap();
    let res = app.get("/health/database").await;
    let code = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["metrics"]["timed_out"], true);
    assert!(
        body["reason"].as_str().unwrap().contains("200 ms"),
        "{body}"
    );
    let all: serde_json::Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(all["status"], "unhealthy");
    assert_eq!(all["checks"]["database"]["timed_out"], true);
    assert_eq!(all["checks"]["supervision"]["status"], "healthy");
    // Released: the ping answers again; the pool has fewer free
    // connections than connection_pool.database.min_available: degraded.
    held.rollback().await.unwrap();
    let res = app.get("/health/database").await;
    let code = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "degraded");
    assert!(body["metrics"]["timed_out"].is_null());
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("(fewer than 100)"),
        "{body}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn a_component_leaving_healthy_raises_an_alert_and_coming_back_resolves_it() {
    let mut r = crate::helpers::alerts::Receiver::start().await;
    let app = spawn_app_with(|f| {
        crate::helpers::alerts::routed(f, &r.url)
            .merge(("alerting.group_wait_ms", 50))
            .merge(("health.sample_interval_ms", 100))
            .merge(("health.window_ms", 1000))
    })
    .await;
    let (_, token) = app.user("alice").await;
    let phone = "+9996631234";
    let account = crate::helpers::accounts::connected_account(&app, &token, phone).await;
    // Telegram revokes the session: the account needs its owner.
    app.world.revoke_sessions(phone);
    app.wait_state(account, "revoked", 0).await;
    let firing = loop {
        let (body, _) = r.next_to("/webhook").await;
        let alerts = body["alerts"].as_array().unwrap().clone();
        if let Some(a) = alerts
            .into_iter()
            .find(|a| a["name"] == "telegram_degraded")
        {
            break (body["status"].clone(), a);
        }
    };
    assert_eq!(firing.0, "firing");
    assert_eq!(firing.1["severity"], "medium");
    assert_eq!(firing.1["labels"]["component"], "telegram");
    assert!(
        firing.1["summary"]
            .as_str()
            .unwrap()
            .contains("need their owner"),
        "{}",
        firing.1
    );
    assert!(
        app.metrics()
            .await
            .contains(r#"tgvisor_health_status{component="telegram"} 1"#)
    );
    // The account goes: telegram is healthy again, the alert resolves.
    let res = app
        .delete_auth(&format!("/api/v1/accounts/{account}"), &token)
        .await;
    assert_eq!(res.status().as_u16(), 204);
    loop {
        let (body, _) = r.next_to("/webhook").await;
        if body["status"] == "resolved"
            && body["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["name"] == "telegram_degraded")
        {
            break;
        }
    }
    let resolved = app.alerts.list(Some("resolved"), 10).await.unwrap();
    assert!(resolved.iter().any(|a| a.fingerprint == "health:telegram"));
    app.stop().await;
    r.server.stop(true).await;
}

#[actix_rt::test]
async fn the_seeds_error_rule_raises_a_high_alert_on_a_burst_of_errors() {
    let mut r = crate::helpers::alerts::Receiver::start().await;
    let app = spawn_app_with(|f| {
        crate::helpers::alerts::routed(f, &r.url)
            .merge(("alerting.group_wait_ms", 50))
            .merge(("alerting.rules.errors.threshold", 2))
            .merge(("health.sample_interval_ms", 100))
            .merge(("health.window_ms", 1000))
    })
    .await;
    // Two actors that fail: two tracked errors within the minute.
    for actor in ["root/rate-limiter", "root/uploader"] {
        app.restart_actor(actor).await;
    }
    let burst = loop {
        let (body, _) = r.next_to("/webhook").await;
        if let Some(a) = body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "error_burst")
        {
            break a.clone();
        }
    };
    // alerting.rules.errors.action is "escalate": high.
    assert_eq!(burst["severity"], "high");
    assert_eq!(burst["labels"]["rule"], "error_burst");
    assert!(
        burst["summary"].as_str().unwrap().starts_with("2 errors"),
        "{burst}"
    );
    app.stop().await;
    r.server.stop(true).await;
}
