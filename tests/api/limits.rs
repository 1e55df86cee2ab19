//! Rate limits over HTTP: the per-user API limit, an account's limits and
//! flood waits, and `/health/rate-limits`.

use crate::helpers::accounts::{auth_key, import};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use serde_json::Value;
use std::time::Duration;
use tgvisor::ratelimit::Key;

#[actix_rt::test]
async fn the_fourth_request_in_the_window_is_refused_with_retry_after_for_that_user_only() {
    let app = spawn_app_with(|f| f.merge(("rate_limits.api.standard.max", 3))).await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;

    for i in 0..3 {
        let res = app.get_auth("/api/v1/accounts", &alice).await;
        assert_eq!(res.status().as_u16(), 200, "request {i}");
    }
    let res = app.get_auth("/api/v1/accounts", &alice).await;

    assert_eq!(res.status().as_u16(), 429);
    let retry_after: u64 = res
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    let retry_ms = body["error"]["retry_after_ms"].as_u64().unwrap();
    assert!(retry_ms > 0 && retry_ms <= 60_000, "{retry_ms}");
    assert_eq!(
        retry_after,
        retry_ms.div_ceil(1000),
        "seconds are rounded up"
    );
    let res = app.get_auth("/api/v1/accounts", &bob).await;
    assert_eq!(res.status().as_u16(), 200, "another user is unaffected");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            r#"tgvisor_rate_limit_decisions_total{limit="api_standard",result="throttled"} 1"#
        ),
        "{metrics}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn an_accounts_limits_show_its_keys_and_flood_waits_to_its_owner_only() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice").await;
    let (_, mallory) = app.user("mallory").await;
    let account = import(&app, &alice, "+15550001111", &auth_key(4)).await;
    let id = account["id"].as_i64().unwrap();
    app.limiter
        .check_all(&[Key::account_messages(id), Key::chat_messages(id, 777)])
        .unwrap();
    app.limiter.block(
        &Key::chat_messages(id, 777),
        Duration::from_secs(42),
        "messages.sendMessage",
    );
    app.limiter.check(&Key::account_messages(id + 1)).unwrap();

    let res = app
        .get_auth(&format!("/api/v1/accounts/{id}/limits"), &alice)
        .await;

    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["account_id"], id);
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{body}");
    assert_eq!(keys[0]["limit"], "account_messages");
    assert_eq!(keys[0]["subject"], format!("account:{id}"));
    assert_eq!(
        (keys[0]["used"].as_u64(), keys[0]["max"].as_u64()),
        (Some(1), Some(30))
    );
    assert_eq!(keys[1]["subject"], format!("chat:{id}:777"));
    assert!(keys[1]["blocked_for_ms"].as_u64().unwrap() > 42_000);
    assert!(keys[1]["blocked_until"].is_string());
    assert_eq!(body["flood_waits_last_hour"], 1);
    let flood = &body["flood_waits"][0];
    assert_eq!(flood["seconds"], 42);
    assert_eq!(flood["method"], "messages.sendMessage");
    assert_eq!(flood["scope"], "chat:777");

    let res = app
        .get_auth(&format!("/api/v1/accounts/{id}/limits"), &mallory)
        .await;
    assert_eq!(res.status().as_u16(), 404, "someone else's account");

    // A removed account's keys go with it.
    let res = app
        .delete_auth(&format!("/api/v1/accounts/{id}"), &alice)
        .await;
    assert_eq!(res.status().as_u16(), 204);
    assert!(app.limiter.snapshot(Some(id)).is_empty());
    assert!(app.limiter.flood_waits(id).is_empty());
    app.stop().await;
}

#[actix_rt::test]
async fn rate_limit_health_degrades_past_the_flood_wait_levels() {
    let app = spawn_app().await;
    let (status, body) = rate_limit_health(&app).await;
    assert_eq!((status, &body["status"]), (200, &Value::from("healthy")));
    assert_eq!(body["blocked_keys"], 0);

    // warning = 5, critical = 20 flood waits in the last hour.
    let flood = |accounts: std::ops::RangeInclusive<i64>| {
        for account in accounts {
            app.limiter.block(
                &Key::account_messages(account),
                Duration::from_secs(5),
                "messages.sendMessage",
            );
        }
    };
    flood(1..=6);
    let (status, body) = rate_limit_health(&app).await;
    assert_eq!((status, &body["status"]), (503, &Value::from("degraded")));
    assert_eq!(body["flood_waits_last_hour"], 6);
    assert_eq!(body["blocked_keys"], 6);
    let account = &body["metrics"]["telegram"]["account_messages"];
    assert_eq!(
        (
            account["active_keys"].as_u64(),
            account["blocked_keys"].as_u64()
        ),
        (Some(6), Some(6))
    );
    // A public route: summaries only, never an account, chat or user id.
    assert!(body.get("keys").is_none());
    assert!(!body.to_string().contains("account:"), "{body}");

    flood(7..=21);
    let (status, body) = rate_limit_health(&app).await;
    assert_eq!((status, &body["status"]), (503, &Value::from("unhealthy")));
    assert_eq!(body["flood_waits_last_hour"], 21);
    app.stop().await;
}

#[actix_rt::test]
async fn the_limiters_state_outlives_a_restart_of_its_actor() {
    let app = spawn_app().await;
    let key = Key::account_messages(1);
    app.limiter
        .block(&key, Duration::from_secs(60), "messages.sendMessage");

    app.restart_actor("root/rate-limiter").await;

    assert!(app.limiter.blocked_until(&key).is_some(), "the block stays");
    assert!(app.limiter.check(&key).unwrap_err().blocked);
    app.stop().await;
}

async fn rate_limit_health(app: &TestApp) -> (u16, Value) {
    let res = app.get("/health/rate-limits").await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}
