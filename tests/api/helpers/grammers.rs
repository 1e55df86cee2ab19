//! Accounts on the grammers backend against the loopback fake MTProto
//! server.

use super::TestApp;
use super::accounts::telethon_session_for;
use fake_mtproto::FakeServer;
use serde_json::{Value, json};

pub const PHONE: &str = "+9996621234";

/// Imports a session the fake server knows, as a Telethon string; waits
/// until the account is connected.
pub async fn imported(app: &TestApp, server: &FakeServer, token: &str) -> i64 {
    let session = server.authorize(PHONE).expect("a sim number");
    let res = app
        .post_json(
            "/api/v1/accounts/import",
            Some(token),
            &json!({ "phone": PHONE, "session": telethon_session_for(&session) }),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let account: Value = res.json().await.unwrap();
    let id = account["id"].as_i64().unwrap();
    app.wait_state(id, "connected", 0).await;
    id
}
