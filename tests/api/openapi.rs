//! The OpenAPI document tells the truth about the routes.

use crate::helpers::spawn_app;
use serde_json::Value;
use std::collections::BTreeSet;

#[actix_web::test]
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
