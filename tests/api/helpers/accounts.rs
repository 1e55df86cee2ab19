//! Accounts and messages for tests: Telethon sessions, imports, connected
//! sim accounts, sends through the outbox and waiting for their status.

use super::TestApp;
use base64::Engine;
use serde_json::{Value, json};

/// A Telethon StringSession for DC 2 at 149.154.167.51:443 with `key`.
pub fn telethon_session(key: &[u8; 256]) -> String {
    let mut raw = vec![2u8, 149, 154, 167, 51];
    raw.extend_from_slice(&443u16.to_be_bytes());
    raw.extend_from_slice(key);
    format!("1{}", base64::engine::general_purpose::URL_SAFE.encode(raw))
}

/// A recognisable, non-repeating auth key.
/// A Telethon string for a session's home DC (IPv4 address, port, key).
pub fn telethon_session_for(session: &tgvisor::sessions::SessionData) -> String {
    session
        .to_telethon_string()
        .expect("a home DC with an address and a key")
}

pub fn auth_key(seed: u8) -> [u8; 256] {
    let mut k = [0u8; 256];
    for (i, b) in k.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed) ^ 0x5a;
    }
    k
}

/// Imports an account for `token`; returns its JSON.
pub async fn import(app: &TestApp, token: &str, phone: &str, key: &[u8; 256]) -> Value {
    let res = app
        .post_json(
            "/api/v1/accounts/import",
            Some(token),
            &json!({"phone": phone, "session": telethon_session(key)}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    res.json().await.unwrap()
}

/// Imports a sim account for `token` and waits until it is connected.
pub async fn connected_account(app: &TestApp, token: &str, phone: &str) -> i64 {
    let id = imported_account(app, token, phone).await;
    app.wait_state(id, "connected", 0).await;
    id
}

/// Imports a sim account for `token`; answers its id at once.
pub async fn imported_account(app: &TestApp, token: &str, phone: &str) -> i64 {
    let session = app.world.authorize(phone).expect("a sim number");
    let res = app
        .post_json(
            "/api/v1/accounts/import",
            Some(token),
            &json!({ "phone": phone, "session": telethon_session_for(&session) }),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// POST /accounts/{id}/messages with an optional Idempotency-Key.
pub async fn send(
    app: &TestApp,
    token: &str,
    account: i64,
    body: &Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/accounts/{account}/messages")))
        .bearer_auth(token)
        .json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    req.send().await.expect("request sent")
}

/// Waits for the message's `message.status` event with `status`.
pub async fn wait_status(app: &TestApp, account: i64, message_id: i64, status: &str) -> Value {
    app.wait_event(&format!("account:{account}"), |e| {
        e.kind == "message.status"
            && e.data["message_id"] == message_id
            && e.data["status"] == status
    })
    .await
    .data
}
