use crate::helpers::spawn_app;

#[actix_rt::test]
async fn every_response_carries_a_request_id_and_a_clients_own_is_kept() {
    let app = spawn_app().await;

    let generated = app.get("/health").await;
    let kept = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "client-abc-123")
        .send()
        .await
        .unwrap();
    let replaced = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "has spaces and <html>")
        .send()
        .await
        .unwrap();

    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(kept.headers()["x-request-id"], "client-abc-123");
    assert_ne!(replaced.headers()["x-request-id"], "has spaces and <html>");
    app.stop().await;
}

#[actix_rt::test]
async fn unknown_routes_answer_with_the_json_error_shape() {
    let app = spawn_app().await;

    let res = app.get("/api/v1/nothing-here").await;

    assert_eq!(res.status().as_u16(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].is_string());
    app.stop().await;
}

#[actix_rt::test]
async fn bad_json_bodies_get_clear_4xx_codes() {
    let app = spawn_app().await;
    let post = |body: String| {
        app.client
            .post(app.url("/debug/actors/panic"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let malformed = post("{\"actor\":".into()).await.unwrap();
    let unknown_field = post(r#"{"actor":"root/database","extra":1}"#.into())
        .await
        .unwrap();
    let wrong_type = post(r#"{"actor":42}"#.into()).await.unwrap();
    let too_large = post(format!(r#"{{"actor":"{}"}}"#, "x".repeat(100_000)))
        .await
        .unwrap();

    for (res, status, code) in [
        (malformed, 400, "malformed_json"),
        (unknown_field, 400, "invalid_field"),
        (wrong_type, 400, "invalid_field"),
        (too_large, 413, "payload_too_large"),
    ] {
        assert_eq!(res.status().as_u16(), status);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], code);
    }
    // None of them reached the actor.
    assert_eq!(app.supervision.status("root/database").unwrap().restarts, 0);
    app.stop().await;
}

#[actix_rt::test]
async fn api_routes_answer_bad_bodies_wrong_methods_and_types_with_coded_4xx() {
    let app = spawn_app().await;
    let post = |body: String| {
        app.client
            .post(app.url("/api/v1/auth/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let malformed = post("{\"username\":".into()).await.unwrap();
    let unknown_field = post(
        r#"{"username":"abc","email":"a@example.com","password":"long enough","admin":true}"#
            .into(),
    )
    .await
    .unwrap();
    let wrong_type =
        post(r#"{"username":42,"email":"a@example.com","password":"long enough"}"#.into())
            .await
            .unwrap();
    let missing = post(r#"{"username":"abc"}"#.into()).await.unwrap();
    let too_large = post(format!(r#"{{"username":"{}"}}"#, "x".repeat(100_000)))
        .await
        .unwrap();
    let not_json = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "text/plain")
        .body("username=abc")
        .send()
        .await
        .unwrap();
    let wrong_method = app.get("/api/v1/auth/login").await;

    for (res, status, code) in [
        (malformed, 400, "malformed_json"),
        (unknown_field, 400, "invalid_field"),
        (wrong_type, 400, "invalid_field"),
        (missing, 400, "invalid_field"),
        (too_large, 413, "payload_too_large"),
        (not_json, 415, "unsupported_media_type"),
        (wrong_method, 405, "method_not_allowed"),
    ] {
        assert_eq!(res.status().as_u16(), status, "{code}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{code}"
        );
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], code);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    app.stop().await;
}
