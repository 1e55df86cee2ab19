//! The OpenAPI document tells the truth about the routes: the ones it
//! lists, the schemas of their answers, and the errors they can give.
//! (`scripts/fuzz-api` checks far more of it, with generated requests.)

use crate::helpers::accounts::{connected_account, send, wait_status};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use std::collections::BTreeSet;

#[actix_rt::test]
async fn the_openapi_document_lists_exactly_the_registered_routes() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/openapi.json").await;
    assert_eq!(res.status().as_u16(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let registered: BTreeSet<(String, String)> =
        tgvisor::http::registered_routes().into_iter().collect();
    assert_eq!(documented, registered);
    assert!(registered.len() >= 11);

    // Routes that declare bearer security refuse a request without a token,
    // and the others do not ask for one.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let secured = op.get("security").is_some();
            let url = app.url(&path.replace("{id}", "1"));
            let res = app
                .client
                .request(method.to_uppercase().parse().unwrap(), url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status().as_u16() == 401,
                secured,
                "{method} {path}: status {}",
                res.status()
            );
        }
    }
    // Every schema a response refers to is defined.
    let text = doc.to_string();
    for schema in ["ErrorBody", "UserView", "TokenResponse", "AccountView"] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema} missing from components"
        );
        assert!(text.contains(&format!("#/components/schemas/{schema}")));
    }
    app.stop().await;
}

/// The document, fetched from `app`.
async fn document(app: &TestApp) -> Value {
    app.get("/api/v1/openapi.json").await.json().await.unwrap()
}

/// The schema a `$ref` names.
fn resolve<'a>(doc: &'a Value, reference: &Value) -> &'a Value {
    let name = reference
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .unwrap_or_else(|| panic!("not a schema reference: {reference}"));
    &doc["components"]["schemas"][name]
}

/// The documented values of `schema`'s property `field` (an enum behind a `$ref`).
fn enum_of(doc: &Value, schema: &str, field: &str) -> (String, Vec<String>) {
    let reference = &doc["components"]["schemas"][schema]["properties"][field]["$ref"];
    let values = resolve(doc, reference)["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema}.{field} is not an enum"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    (reference.as_str().unwrap().to_owned(), values)
}

/// Every operation of the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            all.push((method.clone(), path.clone(), op.clone()));
        }
    }
    all
}

/// Asserts `res` is an error the operation documents: its status is listed,
/// with the error body, and the description names `code`.
async fn assert_documented(op: &Value, label: &str, res: reqwest::Response, code: &str) -> Value {
    let status = res.status().as_u16().to_string();
    let documented = &op["responses"][&status];
    assert!(
        documented.is_object(),
        "{label}: {status} ({code}) is not documented"
    );
    assert_eq!(
        documented["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody",
        "{label}: {status}"
    );
    assert!(
        documented["description"]
            .as_str()
            .unwrap()
            .contains(&format!("`{code}`")),
        "{label}: the {status} answer does not name `{code}`: {documented}"
    );
    let headers = res.headers().clone();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{label}: {body}");
    if status == "429" {
        assert_eq!(
            documented["headers"]["Retry-After"]["$ref"], "#/components/headers/Retry-After",
            "{label}"
        );
        let secs: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(secs >= 1, "{label}: Retry-After {secs}");
    }
    body
}

/// `path` with every `{param}` replaced by `value`.
fn fill(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &rest[rest[start..].find('}').unwrap() + start + 1..];
    }
    out.push_str(rest);
    out
}

#[actix_rt::test]
async fn message_and_upload_statuses_are_documented_by_enums_of_their_own() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, "+9996621234").await;
    let res = send(
        &app,
        &token,
        account,
        &json!({"chat": "me", "text": "hi"}),
        None,
    )
    .await;
    assert_eq!(res.status().as_u16(), 202);
    let accepted: Value = res.json().await.unwrap();
    let id = accepted["message_id"].as_i64().unwrap();
    wait_status(&app, account, id, "sent").await;
    let view: Value = app
        .get_auth(&format!("/api/v1/accounts/{account}/messages/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    let doc = document(&app).await;

    // Both message schemas name one enum, and it holds what the API answers.
    let (reference, values) = enum_of(&doc, "MessageView", "status");
    assert_eq!(reference, "#/components/schemas/MessageStatus");
    assert_eq!(values, ["queued", "sending", "sent", "failed"]);
    assert_eq!(enum_of(&doc, "SendResponse", "status").0, reference);
    assert!(values.contains(&accepted["status"].as_str().unwrap().to_owned()));
    assert!(values.contains(&view["status"].as_str().unwrap().to_owned()));
    // The upload's is another.
    let (reference, values) = enum_of(&doc, "UploadView", "status");
    assert_eq!(reference, "#/components/schemas/UploadStatus");
    assert_eq!(values, ["receiving", "paused", "done", "failed"]);
    assert!(doc["components"]["schemas"].get("Status").is_none());
    app.stop().await;
}

#[actix_rt::test]
async fn every_operation_documents_what_its_extractors_refuse() {
    let app = spawn_app_with(|f| f.merge(("rate_limits.api.standard.max", 100_000))).await;
    let token = app.admin("root").await;
    let doc = document(&app).await;
    let mut checked = 0;
    for (method, path, op) in operations(&doc) {
        let label = format!("{} {path}", method.to_uppercase());
        let method: reqwest::Method = method.to_uppercase().parse().unwrap();
        let secured = op.get("security").is_some();
        let request = |path: String| {
            let req = app.client.request(method.clone(), app.url(&path));
            if secured {
                req.bearer_auth(&token)
            } else {
                req
            }
        };
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let has = |place: &str| params.iter().any(|p| p["in"] == place);
        if op["requestBody"]["content"]
            .get("application/json")
            .is_some()
        {
            let path = fill(&path, "1");
            let res = request(path.clone())
                .header("content-type", "text/plain")
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_documented(&op, &label, res, "unsupported_media_type").await;
            let res = request(path.clone())
                .header("content-type", "application/json")
                .body("{")
                .send()
                .await
                .unwrap();
            assert_documented(&op, &label, res, "malformed_json").await;
            let res = request(path)
                .header("content-type", "application/json")
                .body(format!("\"{}\"", "x".repeat(70_000)))
                .send()
                .await
                .unwrap();
            assert_documented(&op, &label, res, "payload_too_large").await;
            checked += 1;
        }
        if has("query") {
            let res = request(format!("{}?no_such_parameter=1", fill(&path, "1")))
                .send()
                .await
                .unwrap();
            assert_documented(&op, &label, res, "invalid_query").await;
            checked += 1;
        }
        if has("path") {
            let res = request(fill(&path, "not-an-id")).send().await.unwrap();
            assert_documented(&op, &label, res, "not_found").await;
            checked += 1;
        }
        if secured {
            let res = app
                .client
                .request(method.clone(), app.url(&fill(&path, "1")))
                .send()
                .await
                .unwrap();
            assert_documented(&op, &label, res, "token_missing").await;
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked} refusals checked");
    app.stop().await;
}

#[actix_rt::test]
async fn over_the_api_limit_every_secured_operation_answers_a_documented_429() {
    let app = spawn_app_with(|f| f.merge(("rate_limits.api.standard.max", 1))).await;
    let token = app.admin("root").await;
    assert_eq!(
        app.get_auth("/api/v1/accounts", &token)
            .await
            .status()
            .as_u16(),
        200
    );
    let doc = document(&app).await;
    let mut secured = 0;
    for (method, path, op) in operations(&doc) {
        if op.get("security").is_none() {
            continue;
        }
        let label = format!("{} {path}", method.to_uppercase());
        let res = app
            .client
            .request(
                method.to_uppercase().parse().unwrap(),
                app.url(&fill(&path, "1")),
            )
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let body = assert_documented(&op, &label, res, "rate_limited").await;
        assert!(
            body["error"]["retry_after_ms"].as_u64().unwrap() > 0,
            "{label}"
        );
        secured += 1;
    }
    assert!(secured >= 20, "{secured} secured operations");
    app.stop().await;
}

#[actix_rt::test]
async fn a_refused_registration_says_registrations_and_is_documented() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.register(&format!("user{i}")).await;
    }
    let res = app
        .post_json(
            "/api/v1/auth/register",
            None,
            &json!({"username": "user5", "email": "u5@example.com", "password": "long enough"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 429);
    let doc = document(&app).await;
    let op = &doc["paths"]["/api/v1/auth/register"]["post"];
    let body = assert_documented(op, "register", res, "rate_limited").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("registrations"), "{message}");
    assert!(!message.contains("login"), "{message}");
    app.stop().await;
}
