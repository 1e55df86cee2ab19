use crate::helpers::{spawn_app, spawn_app_with, wait_for_event};
use tgvisor::supervisor::SupervisionEventKind;

#[actix_web::test]
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

#[actix_web::test]
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

#[actix_web::test]
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
