//! Accounts: import, list, show, remove, and ownership (another user's ids
//! answer 404 exactly like ids that do not exist).

use crate::helpers::accounts::{auth_key, import, telethon_session};
use crate::helpers::spawn_app;
use serde_json::{Value, json};

#[actix_rt::test]
async fn import_list_show_and_remove_an_account() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;

    // A session the (simulated) Telegram knows, as if made by Telethon.
    let sim = app.world.authorize("+9996620123").unwrap();
    let key = *sim.dcs[0].auth_key.as_ref().unwrap().expose();
    let account = import(&app, &token, "+999 66 20123", &key).await;
    let id = account["id"].as_i64().unwrap();
    assert_eq!(account["phone_hint"], "+********23");
    // An imported account starts connecting at once, and connects.
    assert_eq!(account["state"], "connecting");
    app.wait_state(id, "connected", 0).await;
    assert!(account["session"]["id"].is_i64());
    let text = account.to_string();
    assert!(
        !text.contains("9996620123"),
        "no phone number in answers: {text}"
    );

    let list: Vec<Value> = app
        .get_auth("/api/v1/accounts", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id);
    let one: Value = app
        .get_auth(&format!("/api/v1/accounts/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["state"], "connected");
    assert_eq!(
        one["telegram_user_id"].as_i64(),
        app.world.user_id("+9996620123")
    );
    for field in ["id", "phone_hint", "created_at", "session"] {
        assert_eq!(one[field], account[field], "{field}");
    }

    // The same number again is a conflict.
    let res = app
        .post_json(
            "/api/v1/accounts/import",
            Some(&token),
            &json!({"phone": "+9996620123", "session": telethon_session(&auth_key(2))}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 409);

    let res = app
        .delete_auth(&format!("/api/v1/accounts/{id}"), &token)
        .await;
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(
        app.get_auth(&format!("/api/v1/accounts/{id}"), &token)
            .await
            .status(),
        404
    );
    // Its sessions are gone with it, not merely deactivated.
    let db = app.db_conn().await;
    use sea_orm::{EntityTrait, PaginatorTrait};
    let left = tgvisor::entities::session::Entity::find()
        .count(&db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    app.stop().await;
}

#[actix_rt::test]
async fn import_rejects_bad_phone_numbers_and_session_strings_clearly() {
    let app = spawn_app().await;
    let (_, token) = app.user("bob").await;
    let good = telethon_session(&auth_key(3));
    let cases = [
        (
            json!({"phone": "12345", "session": good}),
            "phone",
            "missing_plus",
        ),
        (
            json!({"phone": "+1 555 0100", "session": "2abc"}),
            "session",
            "session_unsupported_version",
        ),
        (
            json!({"phone": "+1 555 0100", "session": "1!!!"}),
            "session",
            "session_not_base64",
        ),
        (
            json!({"phone": "+1 555 0100", "session": &good[..101]}),
            "session",
            "session_wrong_length",
        ),
    ];
    for (body, field, reason) in cases {
        let res = app
            .post_json("/api/v1/accounts/import", Some(&token), &body)
            .await;
        assert_eq!(res.status().as_u16(), 400, "{body}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"]["code"], "invalid_input");
        assert_eq!(err["error"]["field"], field);
        assert_eq!(err["error"]["reason"], reason);
        assert!(
            !err.to_string().contains(&good[..40]),
            "the input is not echoed"
        );
    }
    let list: Vec<Value> = app
        .get_auth("/api/v1/accounts", &token)
        .await
        .json()
        .await
        .unwrap();
    assert!(list.is_empty(), "nothing half-stored");
    app.stop().await;
}

#[actix_rt::test]
async fn another_users_account_ids_answer_404_like_ids_that_do_not_exist() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice").await;
    let (_, mallory) = app.user("mallory").await;
    let account = import(&app, &alice, "+15550001111", &auth_key(4)).await;
    let id = account["id"].as_i64().unwrap();
    let missing = id + 1000;

    let mut answers = Vec::new();
    for target in [id, missing] {
        let get = app
            .get_auth(&format!("/api/v1/accounts/{target}"), &mallory)
            .await;
        let delete = app
            .delete_auth(&format!("/api/v1/accounts/{target}"), &mallory)
            .await;
        for res in [get, delete] {
            assert_eq!(res.status().as_u16(), 404);
            answers.push(res.json::<Value>().await.unwrap());
        }
    }
    assert_eq!(answers[0], answers[2], "GET: someone else's == nonexistent");
    assert_eq!(
        answers[1], answers[3],
        "DELETE: someone else's == nonexistent"
    );
    assert_eq!(answers[0]["error"]["code"], "not_found");

    let list: Vec<Value> = app
        .get_auth("/api/v1/accounts", &mallory)
        .await
        .json()
        .await
        .unwrap();
    assert!(list.is_empty(), "mallory lists nothing of alice's");
    // Alice's account survived mallory's DELETE.
    let res = app
        .get_auth(&format!("/api/v1/accounts/{id}"), &alice)
        .await;
    assert_eq!(res.status().as_u16(), 200);
    // Ids that are not numbers name nothing either.
    let res = app.get_auth("/api/v1/accounts/abc", &alice).await;
    assert_eq!(res.status().as_u16(), 404);
    app.stop().await;
}
