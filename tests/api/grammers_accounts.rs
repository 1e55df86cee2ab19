//! Accounts on the grammers backend, end to end: the service, its account
//! actors and the real grammers client, against the loopback fake MTProto
//! server.

use crate::helpers::grammers::{PHONE, imported};
use crate::helpers::spawn_grammers_app;
use serde_json::Value;
use tgvisor::telegram::sim::ECHO_USER_ID;

#[actix_rt::test]
async fn a_grammers_account_connects_reads_history_and_turns_updates_into_events() {
    let (app, server) = spawn_grammers_app().await;
    let (_, token) = app.user("alice").await;
    let id = imported(&app, &server, &token).await;
    let account: Value = app
        .get_auth(&format!("/api/v1/accounts/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        account["telegram_user_id"].as_i64(),
        server.world().user_id(PHONE)
    );

    // The fake server pushes an update over MTProto: a durable event.
    server
        .world()
        .deliver_from(ECHO_USER_ID, PHONE, "pushed over MTProto")
        .unwrap();
    let event = app
        .wait_event(&format!("account:{id}"), |e| e.kind == "message.new")
        .await;
    assert_eq!(event.data["message"]["text"], "pushed over MTProto");
    assert_eq!(event.data["message"]["sender_id"], ECHO_USER_ID);

    let res = app
        .get_auth(
            &format!("/api/v1/accounts/{id}/chats/@echo/messages"),
            &token,
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let history: Value = res.json().await.unwrap();
    assert_eq!(history["messages"][0]["text"], "pushed over MTProto");
    assert!(server.requests().contains_key("messages.getHistory"));
}

#[actix_rt::test]
async fn messages_that_arrive_while_the_service_is_down_are_caught_up_after_a_restart() {
    let (app, server) = spawn_grammers_app().await;
    let (_, token) = app.user("alice").await;
    let id = imported(&app, &server, &token).await;
    server
        .world()
        .deliver_from(ECHO_USER_ID, PHONE, "before the restart")
        .unwrap();
    app.wait_event(&format!("account:{id}"), |e| {
        e.kind == "message.new" && e.data["message"]["text"] == "before the restart"
    })
    .await;

    // Stop the service (the actor saves its update state), miss two messages.
    let app = {
        let world = server.world().clone();
        app.restart_after(move || {
            world
                .deliver_from(ECHO_USER_ID, PHONE, "while down 1")
                .unwrap();
            world
                .deliver_from(ECHO_USER_ID, PHONE, "while down 2")
                .unwrap();
        })
        .await
    };
    let topic = format!("account:{id}");
    let first = app
        .wait_event(&topic, |e| e.data["message"]["text"] == "while down 1")
        .await;
    let second = app
        .wait_event(&topic, |e| e.data["message"]["text"] == "while down 2")
        .await;
    assert!(second.offset > first.offset, "in order");
    // Exactly once: the message seen before the restart is not replayed.
    let all = tgvisor::events::since(app.events.db(), &topic, 0, 1000)
        .await
        .unwrap();
    let before = all
        .iter()
        .filter(|e| e.data["message"]["text"] == "before the restart")
        .count();
    assert_eq!(before, 1);
}

#[actix_rt::test]
async fn a_grammers_runner_panic_is_survived_by_a_supervised_restart() {
    let (app, server) = spawn_grammers_app().await;
    let (_, token) = app.user("alice").await;
    let id = imported(&app, &server, &token).await;
    let connected = app.wait_state(id, "connected", 0).await;
    let session_before: Value = app
        .get_auth(&format!("/api/v1/accounts/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();

    // The next history call gets an answer that panics grammers' runner.
    server.panic_client_on_next("messages.getHistory");
    let res = app
        .get_auth(&format!("/api/v1/accounts/{id}/chats/me/messages"), &token)
        .await;
    // The call dies with the connection: Telegram unreachable, or the
    // actor already gone to be restarted.
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert!(
        matches!(
            (status, body["error"]["code"].as_str()),
            (503, Some("telegram_unavailable")) | (409, Some("account_not_connected"))
        ),
        "{status} {body}"
    );
    let lost = app
        .wait_event(&format!("account:{id}"), |e| {
            e.offset > connected.offset && e.data["reason"] == "connection lost"
        })
        .await;
    app.wait_state(id, "connected", lost.offset).await;
    let path = format!("root/sessions/account-{id}");
    assert_eq!(app.supervision.status(&path).unwrap().restarts, 1);

    // Same session, rebuilt client, working.
    let after: Value = app
        .get_auth(&format!("/api/v1/accounts/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["session"]["id"], session_before["session"]["id"]);
    let res = app
        .get_auth(&format!("/api/v1/accounts/{id}/chats/me/messages"), &token)
        .await;
    assert_eq!(res.status().as_u16(), 200);
    server
        .world()
        .deliver_from(ECHO_USER_ID, PHONE, "after the panic")
        .unwrap();
    app.wait_event(&format!("account:{id}"), |e| {
        e.data["message"]["text"] == "after the panic"
    })
    .await;
}
