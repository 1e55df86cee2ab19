use crate::helpers::{is_started, spawn_app, spawn_app_with, wait_for_event};
use tgvisor::db::CheckNow;

#[actix_rt::test]
async fn a_crashed_database_actor_is_restarted_and_counted() {
    let app = spawn_app().await;
    let mut events = app.supervision.subscribe();
    let before = app.app_database.ready().await.unwrap();

    let res = app.inject_panic("root/database").await;
    assert_eq!(res.status().as_u16(), 202);
    wait_for_event(&mut events, is_started("root/database", 2)).await;

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"tgvisor_actor_restarts_total{actor="root/database",reason="panic"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"tgvisor_actor_up{actor="root/database"} 1"#));
    // The handle moved to the new actor, which works.
    assert!(!before.connected());
    let health = app
        .app_database
        .send(CheckNow)
        .await
        .expect("the new actor answers");
    assert!(health.up);
    app.stop().await;
}

#[actix_rt::test]
async fn injecting_into_an_unknown_actor_is_a_404() {
    let app = spawn_app().await;

    let res = app.inject_panic("root/nobody").await;

    assert_eq!(res.status().as_u16(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    app.stop().await;
}

#[actix_rt::test]
async fn debug_routes_do_not_exist_without_fault_injection() {
    let app = spawn_app_with(|f| f.merge(("debug.fault_injection", false))).await;

    assert_eq!(
        app.inject_panic("root/database").await.status().as_u16(),
        404
    );
    assert_eq!(app.get("/debug/actors").await.status().as_u16(), 404);
    let body = serde_json::json!({ "topic": "account:1", "count": 1 });
    assert_eq!(
        app.post_json("/debug/events", None, &body)
            .await
            .status()
            .as_u16(),
        404
    );
    assert_eq!(app.supervision.status("root/database").unwrap().restarts, 0);
    app.stop().await;
}
