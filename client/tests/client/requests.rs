//! Authentication and request/reply round trips on a healthy connection.

use crate::fake_server::FakeServer;
use crate::{TOKEN, config, connected, queued_items, subscribed, sync};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tgvisor_client::{Ack, Client, Error, Item, SendFrame, ServerError, Subscription};

fn hello(key: &str) -> SendFrame {
    SendFrame {
        account: 7,
        chat: "@bob".into(),
        text: "hello".into(),
        idempotency_key: key.into(),
    }
}

#[tokio::test(start_paused = true)]
async fn the_token_travels_in_the_authorization_header_not_in_the_query() {
    let mut server = FakeServer::start().await;

    let (client, attempt) = tokio::join!(Client::connect(config(&server)), server.attempt());

    client.unwrap();
    assert_eq!(attempt.authorization.as_deref(), Some("Bearer tok-123"));
    assert_eq!(attempt.uri, "/ws");
    assert!(!attempt.uri.contains(TOKEN));
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_fails_the_first_connection_without_retrying() {
    let mut server = FakeServer::start().await;
    server.refuse([401]);

    let (client, attempt) = tokio::join!(Client::connect(config(&server)), server.attempt());

    assert!(attempt.conn.is_none());
    let err = client.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert_eq!(server.untaken_attempts(), 0);
}

#[tokio::test(start_paused = true)]
async fn subscribe_send_and_ping_resolve_with_their_replies() {
    let mut server = FakeServer::start().await;
    let (client, mut conn) = connected(&mut server).await;

    let (subscription, sub_request) = tokio::join!(
        client.subscribe("account:7", None),
        conn.answer(|r| subscribed(r, 41, true))
    );
    let (ack, send_request) = tokio::join!(
        client.send(hello("k-1")),
        conn.answer(
            |r| json!({"type": "ack", "id": r["id"], "message_id": 99, "status": "queued"})
        )
    );
    let (rtt, ping_request) = tokio::join!(
        client.ping(),
        conn.answer(|r| json!({"type": "pong", "id": r["id"]}))
    );

    assert_eq!(
        sub_request,
        json!({"type": "subscribe", "id": sub_request["id"], "topic": "account:7", "since": null})
    );
    assert_eq!(
        subscription.unwrap(),
        Subscription {
            topic: "account:7".into(),
            offset: Some(41),
            recovered: true
        }
    );
    assert_eq!(
        send_request,
        json!({"type": "send", "id": send_request["id"], "account": 7, "chat": "@bob",
               "text": "hello", "idempotency_key": "k-1"})
    );
    assert_eq!(
        ack.unwrap(),
        Ack {
            message_id: 99,
            status: "queued".into()
        }
    );
    assert_eq!(ping_request["type"], "ping");
    assert!(rtt.is_ok(), "{rtt:?}");
    let ids = [&sub_request["id"], &send_request["id"], &ping_request["id"]];
    assert!(ids.iter().all(|id| id.is_u64()), "{ids:?}");
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    // A subscription from nothing resumes from the topic's offset at that time.
    assert_eq!(
        client.offsets(),
        HashMap::from([("account:7".to_owned(), 41)])
    );
}

#[tokio::test(start_paused = true)]
async fn replies_are_matched_by_id_not_by_arrival_order() {
    let mut server = FakeServer::start().await;
    let (client, mut conn) = connected(&mut server).await;

    let script = async {
        let first = conn.recv().await;
        let second = conn.recv().await;
        for request in [&second, &first] {
            let message_id = if request["idempotency_key"] == "k-1" {
                1
            } else {
                2
            };
            let ack = json!({"type": "ack", "id": request["id"], "message_id": message_id, "status": "queued"});
            conn.send(ack).await;
        }
    };
    let (one, two, ()) = tokio::join!(client.send(hello("k-1")), client.send(hello("k-2")), script);

    assert_eq!(one.unwrap().message_id, 1);
    assert_eq!(two.unwrap().message_id, 2);
}

#[tokio::test(start_paused = true)]
async fn an_error_reply_fails_its_request_with_the_servers_code() {
    let mut server = FakeServer::start().await;
    let (client, mut conn) = connected(&mut server).await;

    let (sent, _) = tokio::join!(
        client.send(hello("k-1")),
        conn.answer(
            |r| json!({"type": "error", "id": r["id"], "code": "rate_limited",
                               "message": "too many messages", "retry_after_ms": 1500})
        )
    );

    assert_eq!(
        sent.unwrap_err(),
        Error::Server(ServerError {
            code: "rate_limited".into(),
            message: "too many messages".into(),
            retry_after: Some(Duration::from_millis(1500)),
        })
    );
}

#[tokio::test(start_paused = true)]
async fn an_unsubscribed_topic_delivers_nothing_more() {
    let mut server = FakeServer::start().await;
    let (mut client, mut conn) = connected(&mut server).await;
    let (subscription, _) = tokio::join!(
        client.subscribe("account:7", Some(3)),
        conn.answer(|r| subscribed(r, 3, true))
    );
    subscription.unwrap();

    let (unsubscribed, request) = tokio::join!(
        client.unsubscribe("account:7"),
        conn.answer(|r| json!({"type": "unsubscribed", "id": r["id"], "topic": "account:7"}))
    );
    conn.event("account:7", 4).await;
    sync(&client, &mut conn).await;

    unsubscribed.unwrap();
    assert_eq!(request["type"], "unsubscribe");
    assert_eq!(request["topic"], "account:7");
    assert_eq!(queued_items(&mut client).await, Vec::<Item>::new());
    assert!(client.offsets().is_empty());
}

#[tokio::test(start_paused = true)]
async fn closing_sends_a_normal_close_even_with_unread_items_waiting() {
    let mut server = FakeServer::start().await;
    let mut config = config(&server);
    config.buffer = 1;
    let (client, (_, mut conn)) = tokio::join!(Client::connect(config), server.accept());
    let client = client.unwrap();
    let (subscription, _) = tokio::join!(
        client.subscribe("account:7", None),
        conn.answer(|r| subscribed(r, 0, true))
    );
    subscription.unwrap();
    for offset in 1..=3 {
        conn.event("account:7", offset).await;
    }

    let ((), code) = tokio::join!(client.close(), conn.closed_by_client());

    assert_eq!(code, 1000);
    assert_eq!(server.untaken_attempts(), 0);
}
