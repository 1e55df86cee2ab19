//! Accounts on the simulated Telegram: sign-in over the API, the account
//! state machine, updates as durable events, supervision of the account
//! actors, the client pool, history and session rotation.

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use tgvisor::telegram::sim::{ECHO_USER_ID, SIM_2FA_PASSWORD};

const PHONE: &str = "+9996621234";
const PHONE_2FA: &str = "+9996629123";

/// Starts a sign-in; answers the account id.
async fn start_sign_in(app: &TestApp, token: &str, phone: &str) -> i64 {
    let res = app
        .post_json("/api/v1/accounts", Some(token), &json!({ "phone": phone }))
        .await;
    assert_eq!(res.status().as_u16(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["next_step"], "code");
    assert_eq!(body["account"]["state"], "awaiting_code");
    assert!(body["expires_in_ms"].as_u64().unwrap() > 0);
    assert!(
        !body.to_string().contains(&phone[4..]),
        "no phone number in answers"
    );
    body["account"]["id"].as_i64().unwrap()
}

async fn submit_code(app: &TestApp, token: &str, id: i64, code: &str) -> reqwest::Response {
    app.post_json(
        &format!("/api/v1/accounts/{id}/login/code"),
        Some(token),
        &json!({ "code": code }),
    )
    .await
}

/// Signs `phone` in (no 2FA) and waits until it is connected.
async fn signed_in(app: &TestApp, token: &str, phone: &str) -> i64 {
    let id = start_sign_in(app, token, phone).await;
    let res = submit_code(app, token, id, "22222").await;
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["next_step"], "done");
    app.wait_state(id, "connected", 0).await;
    id
}

async fn account(app: &TestApp, token: &str, id: i64) -> Value {
    app.get_auth(&format!("/api/v1/accounts/{id}"), token)
        .await
        .json()
        .await
        .unwrap()
}

async fn error_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (status, body["error"].clone())
}

#[actix_rt::test]
async fn a_new_user_signs_in_reads_history_and_receives_updates_as_events() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;

    let id = signed_in(&app, &token, PHONE).await;
    let acct: Value = account(&app, &token, id).await;
    assert_eq!(acct["state"], "connected");
    assert_eq!(acct["telegram_user_id"].as_i64(), app.world.user_id(PHONE));
    assert!(acct["session"]["id"].is_i64());

    // Saved Messages, through the account's client.
    let res = app
        .get_auth(
            &format!("/api/v1/accounts/{id}/chats/me/messages?limit=10"),
            &token,
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let history: Value = res.json().await.unwrap();
    assert!(history["messages"].as_array().unwrap().is_empty());

    // @echo writes: a durable message.new event on the account's topic.
    let delivered = app
        .world
        .deliver_from(ECHO_USER_ID, PHONE, "hello from echo")
        .unwrap();
    let event = app
        .wait_event(&format!("account:{id}"), |e| e.kind == "message.new")
        .await;
    assert_eq!(event.data["message"]["text"], "hello from echo");
    assert_eq!(event.data["message"]["id"], delivered.id);
    assert_eq!(event.data["message"]["sender_id"], ECHO_USER_ID);
    assert_eq!(event.data["account_id"], id);

    // And the chat's history has it.
    let history: Value = app
        .get_auth(
            &format!("/api/v1/accounts/{id}/chats/@echo/messages"),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["messages"][0]["text"], "hello from echo");

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"tgvisor_telegram_accounts{state="connected"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"tgvisor_telegram_updates_received_total{kind="message.new"} 1"#));
    assert!(metrics.contains(
        r#"tgvisor_telegram_requests_total{method="messages.getHistory",result="ok"} 2"#
    ));
    app.stop().await;
}

#[actix_rt::test]
async fn two_step_verification_asks_for_the_password_and_counts_wrong_ones() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let id = start_sign_in(&app, &token, PHONE_2FA).await;

    // The password route before the code is the wrong step.
    let res = app
        .post_json(
            &format!("/api/v1/accounts/{id}/login/password"),
            Some(&token),
            &json!({ "password": SIM_2FA_PASSWORD }),
        )
        .await;
    let (status, err) = error_of(res).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("login_wrong_step"))
    );

    let res = submit_code(&app, &token, id, "22222").await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["next_step"], "password");
    assert_eq!(body["account"]["state"], "awaiting_password");

    let res = app
        .post_json(
            &format!("/api/v1/accounts/{id}/login/password"),
            Some(&token),
            &json!({ "password": "not-it" }),
        )
        .await;
    let (status, err) = error_of(res).await;
    assert_eq!(status, 400);
    assert_eq!(err["code"], "password_invalid");
    assert_eq!(err["attempts_left"], 4);

    let res = app
        .post_json(
            &format!("/api/v1/accounts/{id}/login/password"),
            Some(&token),
            &json!({ "password": SIM_2FA_PASSWORD }),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["next_step"], "done");
    app.wait_state(id, "connected", 0).await;
    app.stop().await;
}

#[actix_rt::test]
async fn wrong_codes_are_limited_and_the_sign_in_can_start_again() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let (_, mallory) = app.user("mallory").await;
    let id = start_sign_in(&app, &token, PHONE).await;

    // Someone else's sign-in looks like none at all.
    let (status, err) = error_of(submit_code(&app, &mallory, id, "22222").await).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("login_not_pending"))
    );
    // Not digits: refused before Telegram sees it, not counted.
    let (status, err) = error_of(submit_code(&app, &token, id, "abc").await).await;
    assert_eq!((status, err["field"].as_str()), (400, Some("code")));

    for left in (1..=4).rev() {
        let (status, err) = error_of(submit_code(&app, &token, id, "11111").await).await;
        assert_eq!(status, 400);
        assert_eq!(err["code"], "code_invalid");
        assert_eq!(err["attempts_left"], left);
    }
    let (status, err) = error_of(submit_code(&app, &token, id, "11111").await).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (410, Some("too_many_attempts"))
    );
    // The right code is too late now.
    let (status, err) = error_of(submit_code(&app, &token, id, "22222").await).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("login_not_pending"))
    );
    app.wait_state(id, "login_expired", 0).await;

    // Asking again reuses the account row.
    assert_eq!(start_sign_in(&app, &token, PHONE).await, id);
    assert_eq!(
        submit_code(&app, &token, id, "22222")
            .await
            .status()
            .as_u16(),
        200
    );
    app.wait_state(id, "connected", 0).await;
    // Once signed in, the number is taken.
    let res = app
        .post_json("/api/v1/accounts", Some(&token), &json!({ "phone": PHONE }))
        .await;
    assert_eq!(error_of(res).await.0, 409);
    app.stop().await;
}

#[actix_rt::test]
async fn pending_sign_ins_expire_and_are_bounded_per_user() {
    let app = spawn_app_with(|f| {
        f.merge(("telegram.pending_login_ttl_ms", 300))
            .merge(("telegram.max_pending_logins_per_user", 2))
    })
    .await;
    let (_, token) = app.user("alice").await;
    let a = start_sign_in(&app, &token, "+9996621001").await;
    let _b = start_sign_in(&app, &token, "+9996621002").await;
    let res = app
        .post_json(
            "/api/v1/accounts",
            Some(&token),
            &json!({ "phone": "+9996621003" }),
        )
        .await;
    let (status, err) = error_of(res).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (429, Some("too_many_pending_logins"))
    );

    let expired = app.wait_state(a, "login_expired", 0).await;
    assert_eq!(expired.data["reason"], "timeout");
    let (status, err) = error_of(submit_code(&app, &token, a, "22222").await).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("login_not_pending"))
    );

    // Invalid numbers are Telegram's refusal, with a stable code.
    let res = app
        .post_json(
            "/api/v1/accounts",
            Some(&token),
            &json!({ "phone": "+15551234567" }),
        )
        .await;
    let (status, err) = error_of(res).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("phone_number_invalid"))
    );
    app.stop().await;
}

#[actix_rt::test]
async fn a_revoked_session_ends_in_revoked_with_an_alert_not_a_restart_loop() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let id = signed_in(&app, &token, PHONE).await;

    app.world.revoke_sessions(PHONE);
    app.wait_state(id, "revoked", 0).await;
    let alert = app
        .wait_event(&format!("account:{id}"), |e| e.kind == "account.alert")
        .await;
    assert_eq!(alert.data["state"], "revoked");

    let res = app
        .get_auth(&format!("/api/v1/accounts/{id}/chats/me/messages"), &token)
        .await;
    let (status, err) = error_of(res).await;
    assert_eq!(status, 409);
    assert_eq!(err["code"], "account_not_connected");
    assert_eq!(err["state"], "revoked");
    let acct: Value = account(&app, &token, id).await;
    assert_eq!(acct["state"], "revoked");
    // The actor ended normally and was removed: never restarted.
    let path = format!("root/sessions/account-{id}");
    assert!(
        app.supervision
            .status(&path)
            .is_none_or(|s| s.restarts == 0)
    );
    app.stop().await;
}

#[actix_rt::test]
async fn a_dropped_connection_is_survived_by_a_supervised_restart() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let id = signed_in(&app, &token, PHONE).await;
    let first = app.wait_state(id, "connected", 0).await;
    let session_before = app.world.calls().get("connect").copied().unwrap_or(0);

    app.world.drop_connections();
    let lost = app
        .wait_event(&format!("account:{id}"), |e| {
            e.offset > first.offset && e.data["reason"] == "connection lost"
        })
        .await;
    let again = app.wait_state(id, "connected", lost.offset).await;
    assert!(again.offset > lost.offset);
    assert_eq!(app.world.calls()["connect"], session_before + 1);
    let path = format!("root/sessions/account-{id}");
    assert_eq!(app.supervision.status(&path).unwrap().restarts, 1);

    // The rebuilt client works, from the stored session.
    app.world
        .deliver_from(ECHO_USER_ID, PHONE, "still here")
        .unwrap();
    let e = app
        .wait_event(&format!("account:{id}"), |e| e.kind == "message.new")
        .await;
    assert_eq!(e.data["message"]["text"], "still here");
    app.stop().await;
}

#[actix_rt::test]
async fn the_client_pool_caps_connected_accounts_and_the_rest_wait() {
    let app = spawn_app_with(|f| f.merge(("telegram.client_pool_size", 1))).await;
    let (_, token) = app.user("alice").await;
    let first = signed_in(&app, &token, "+9996621111").await;

    let second = start_sign_in(&app, &token, "+9996621112").await;
    assert_eq!(
        submit_code(&app, &token, second, "22222")
            .await
            .status()
            .as_u16(),
        200
    );
    let waiting = app.wait_state(second, "waiting", 0).await;
    let metrics = app.metrics().await;
    assert!(metrics.contains(r#"tgvisor_telegram_accounts{state="waiting"} 1"#));

    // A slot frees up: the waiting account connects.
    let res = app
        .delete_auth(&format!("/api/v1/accounts/{first}"), &token)
        .await;
    assert_eq!(res.status().as_u16(), 204);
    app.wait_state(second, "connected", waiting.offset).await;
    app.stop().await;
}

#[actix_rt::test]
async fn a_restart_reconnects_accounts_and_expires_waiting_sign_ins() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let connected = signed_in(&app, &token, PHONE).await;
    let pending = start_sign_in(&app, &token, "+9996621999").await;

    let app = app.restart(|f| f).await;
    let last = app
        .wait_event(&format!("account:{connected}"), |_| true)
        .await;
    app.wait_state(connected, "connected", last.offset).await;
    let acct: Value = account(&app, &token, pending).await;
    assert_eq!(acct["state"], "login_expired");
    let (status, err) = error_of(submit_code(&app, &token, pending, "22222").await).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("login_not_pending"))
    );
    app.stop().await;
}

#[actix_rt::test]
async fn rotating_a_session_moves_it_to_a_new_row_and_the_client_keeps_working() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let (_, mallory) = app.user("mallory").await;
    let id = signed_in(&app, &token, PHONE).await;
    let before: Value = account(&app, &token, id).await;

    let path = format!("/api/v1/accounts/{id}/sessions/rotate");
    let res = app.post_json(&path, Some(&mallory), &json!({})).await;
    assert_eq!(res.status().as_u16(), 404);
    let res = app.post_json(&path, Some(&token), &json!({})).await;
    assert_eq!(res.status().as_u16(), 200);
    let rotated: Value = res.json().await.unwrap();
    assert_ne!(rotated["session_id"], before["session"]["id"]);

    let after: Value = account(&app, &token, id).await;
    assert_eq!(after["session"]["id"], rotated["session_id"]);
    let event = app
        .wait_event(&format!("account:{id}"), |e| e.kind == "session.rotated")
        .await;
    assert_eq!(event.data["reason"], "manual");
    assert!(
        app.metrics()
            .await
            .contains(r#"tgvisor_telegram_session_rotations_total{reason="manual"} 1"#)
    );
    let res = app
        .get_auth(&format!("/api/v1/accounts/{id}/chats/me/messages"), &token)
        .await;
    assert_eq!(res.status().as_u16(), 200);
    app.stop().await;
}

#[actix_rt::test]
async fn history_rejects_bad_input_with_stable_codes() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let id = signed_in(&app, &token, PHONE).await;
    for (path, code, field) in [
        ("chats/me/messages?limit=0", "invalid_input", "limit"),
        ("chats/me/messages?limit=101", "invalid_input", "limit"),
        ("chats/@a/messages", "invalid_input", "chat"),
    ] {
        let res = app
            .get_auth(&format!("/api/v1/accounts/{id}/{path}"), &token)
            .await;
        let (status, err) = error_of(res).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(err["code"], code, "{path}");
        assert_eq!(err["field"], field, "{path}");
    }
    let res = app
        .get_auth(
            &format!("/api/v1/accounts/{id}/chats/@nobody_here/messages"),
            &token,
        )
        .await;
    let (status, err) = error_of(res).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("chat_not_found"))
    );
    app.stop().await;
}

#[actix_rt::test]
async fn an_account_that_keeps_crashing_is_given_up_alone_as_failed() {
    let app = spawn_app_with(|f| {
        f.merge(("telegram.account_restarts.max_restarts", 2))
            .merge(("telegram.account_restarts.backoff_base_ms", 10))
            .merge(("telegram.account_restarts.backoff_cap_ms", 10))
    })
    .await;
    let (_, token) = app.user("alice").await;
    let steady = signed_in(&app, &token, "+9996621111").await;
    let flaky = signed_in(&app, &token, "+9996621112").await;
    let path = format!("root/sessions/account-{flaky}");

    // Three crashes in a row: two restarts are allowed, the third gives up.
    let mut last = app.wait_state(flaky, "connected", 0).await.offset;
    for _ in 0..2 {
        assert!(
            app.supervision
                .inject_panic(&path, "bug in the account actor")
        );
        last = app.wait_state(flaky, "connected", last).await.offset;
    }
    assert!(
        app.supervision
            .inject_panic(&path, "bug in the account actor")
    );
    let failed = app.wait_state(flaky, "failed", last).await;
    assert_eq!(failed.data["reason"], "crashed too often");
    let acct: Value = account(&app, &token, flaky).await;
    assert_eq!(acct["state"], "failed");

    // Its neighbour carries on.
    app.world
        .deliver_from(ECHO_USER_ID, "+9996621111", "still fine")
        .unwrap();
    app.wait_event(&format!("account:{steady}"), |e| e.kind == "message.new")
        .await;
    assert!(app.supervision.root_failure().is_none());
    app.stop().await;
}

#[actix_rt::test]
async fn a_number_another_user_added_answers_as_if_it_were_unused_on_both_paths() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let alices = signed_in(&app, &alice, PHONE).await;

    // Bob learns nothing of Alice's number: his sign-in starts as for any
    // unused number and gives him an account of his own.
    let bobs = signed_in(&app, &bob, PHONE).await;
    assert_ne!(alices, bobs);
    // The same rule as on import: a number is unique per owner, so his
    // second attempt, on either path, is his own duplicate.
    let res = app
        .post_json("/api/v1/accounts", Some(&bob), &json!({ "phone": PHONE }))
        .await;
    let (status, error) = error_of(res).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("account_exists"))
    );
    let key = crate::helpers::accounts::auth_key(9);
    let res = app
        .post_json(
            "/api/v1/accounts/import",
            Some(&bob),
            &json!({"phone": PHONE, "session": crate::helpers::accounts::telethon_session(&key)}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 409);
    // Alice's number imported by a third user: 201, as an unused one.
    let (_, carol) = app.user("carol").await;
    crate::helpers::accounts::import(&app, &carol, PHONE, &key).await;
    assert_eq!(account(&app, &alice, alices).await["state"], "connected");
    app.stop().await;
}

#[actix_rt::test]
async fn one_user_with_many_accounts_cannot_leave_another_users_account_waiting() {
    let app = spawn_app_with(|f| {
        f.merge(("telegram.client_pool_size", 3))
            .merge(("telegram.max_clients_per_user", 2))
    })
    .await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    signed_in(&app, &alice, "+9996621111").await;
    signed_in(&app, &alice, "+9996621112").await;
    // Alice's third account is over her share: it waits, and says why,
    // while the node still has a slot.
    let third = start_sign_in(&app, &alice, "+9996621113").await;
    assert_eq!(
        submit_code(&app, &alice, third, "22222").await.status(),
        200
    );
    let waiting = app.wait_state(third, "waiting", 0).await;
    assert_eq!(
        waiting.data["reason"],
        "the owner's share of client slots is taken"
    );
    // Bob's account takes the node's last slot.
    signed_in(&app, &bob, "+9996621221").await;
    assert_eq!(account(&app, &alice, third).await["state"], "waiting");
    app.stop().await;
}
