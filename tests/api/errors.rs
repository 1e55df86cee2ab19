//! The error tracker: 5xx answers carry an incident id that leads to the
//! tracked error; actors that fail are tracked too.

use crate::helpers::spawn_app_with;
use serde_json::Value;

#[actix_rt::test]
async fn a_server_error_carries_an_incident_id_that_leads_to_its_group() {
    // One pooled connection, quickly given up on.
    let app = spawn_app_with(|f| {
        f.merge(("database.max_connections", 1))
            .merge(("database.min_connections", 1))
            .merge(("database.connect_timeout_ms", 300))
    })
    .await;
    let admin = app.admin("root").await;
    let (_, token) = app.user("alice").await;
    let held = sea_orm::TransactionTrait::begin(&app.app_db).await.unwrap();
    let res = app.get_auth("/api/v1/accounts", &token).await;
    assert_eq!(res.status().as_u16(), 500);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal");
    let incident = body["error"]["incident_id"].as_str().unwrap().to_owned();
    assert!(!body.to_string().contains("pool"), "no internals: {body}");
    held.rollback().await.unwrap();
    let res = app.get_auth("/api/v1/errors", &admin).await;
    assert_eq!(res.status().as_u16(), 200);
    let groups: Vec<Value> = res.json().await.unwrap();
    let group = groups
        .iter()
        .find(|g| g["kind"] == "internal")
        .unwrap_or_else(|| panic!("an internal group: {groups:?}"));
    assert_eq!(group["count"], 1);
    let sample = &group["samples"][0];
    assert_eq!(sample["incident_id"], incident.as_str());
    assert_eq!(sample["context"], "/api/v1/accounts");
    assert!(
        app.metrics()
            .await
            .contains(r#"tgvisor_errors_total{kind="internal"} 1"#)
    );
    // Not for users.
    assert_eq!(
        app.get_auth("/api/v1/errors", &token)
            .await
            .status()
            .as_u16(),
        403
    );
    app.stop().await;
}

#[actix_rt::test]
async fn an_actor_that_panics_is_tracked() {
    let app = spawn_app_with(|f| f).await;
    let admin = app.admin("root").await;
    app.restart_actor("root/rate-limiter").await;
    let groups: Vec<Value> = app
        .get_auth("/api/v1/errors", &admin)
        .await
        .json()
        .await
        .unwrap();
    let panic = groups
        .iter()
        .find(|g| g["kind"] == "actor_panic")
        .unwrap_or_else(|| panic!("an actor_panic group: {groups:?}"));
    assert_eq!(panic["samples"][0]["context"], "root/rate-limiter");
    // The health check counts it among the window's restarts (one is no
    // storm: supervision stays healthy).
    let health: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health["checks"]["supervision"]["restarts"], 1);
    assert_eq!(health["checks"]["supervision"]["status"], "healthy");
    app.stop().await;
}
