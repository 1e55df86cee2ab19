//! The WebSocket gateway with a real client (tokio-tungstenite) against the
//! running app: authentication, subscriptions and replay, sends, limits and
//! close codes.

use crate::helpers::accounts::connected_account;
use crate::helpers::scrape::{sample_sum, scrape_until};
use crate::helpers::ws::{Ws, authed, closed, connect, recv, send, ws_url};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const PHONE: &str = "+9996621299";
/// How long any one expected frame may take.
const FRAME_TIMEOUT: Duration = Duration::from_secs(20);

/// Subscribes to `topic` from now on (`since: null`).
async fn subscribe_live(ws: &mut Ws, topic: &str) {
    send(
        ws,
        json!({"type": "subscribe", "id": "live", "topic": topic, "since": null}),
    )
    .await;
    let sub = recv(ws).await;
    assert_eq!(
        (sub["type"].as_str(), &sub["id"]),
        (Some("subscribed"), &json!("live"))
    );
}

/// The user alice, her token, a connected sim account of hers and its topic.
async fn alice_with_account(app: &TestApp) -> (String, i64, String) {
    let (_, token) = app.user("alice").await;
    let account = connected_account(app, &token, PHONE).await;
    (token, account, format!("account:{account}"))
}

#[actix_rt::test]
async fn authentication_by_header_or_first_frame_and_nothing_else() {
    let app = spawn_app().await;
    let (user_id, token) = app.user("alice").await;

    // Header.
    let (mut ws, ok) = authed(&app, &token).await;
    assert_eq!(ok["user_id"], user_id);
    assert!(ok["connection_id"].as_u64().is_some());
    send(&mut ws, json!({"type": "ping", "id": "p1"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong", "id": "p1"}));
    drop(ws);

    // First frame.
    let mut ws = connect(&app, None).await;
    send(&mut ws, json!({"type": "auth", "token": token})).await;
    let ok = recv(&mut ws).await;
    assert_eq!(
        (ok["type"].as_str(), &ok["user_id"]),
        (Some("auth_ok"), &json!(user_id))
    );
    drop(ws);

    // A bad token: an error frame, then 4001.
    let mut ws = connect(&app, Some("not-a-token")).await;
    let (code, frames) = closed(&mut ws).await;
    assert_eq!(code, Some(4001));
    assert_eq!(frames[0]["code"], "unauthorized");

    // Anything but auth first: 4001.
    let mut ws = connect(&app, None).await;
    send(&mut ws, json!({"type": "ping", "id": 1})).await;
    let (code, frames) = closed(&mut ws).await;
    assert_eq!(code, Some(4001));
    assert_eq!(frames[0]["code"], "unauthorized");

    // A token in the query string is refused before the upgrade.
    let request = format!("{}?token={token}", ws_url(&app))
        .into_client_request()
        .unwrap();
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 400);
            let body: Value = serde_json::from_slice(res.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "token_in_query");
        }
        other => panic!("expected a refused upgrade, got {other:?}"),
    }
    app.stop().await;
}

#[actix_rt::test]
async fn no_auth_frame_in_time_closes_with_4001() {
    let app = spawn_app_with(|f| f.merge(("websocket.auth_timeout_ms", 200))).await;
    let mut ws = connect(&app, None).await;
    let (code, frames) = closed(&mut ws).await;
    assert_eq!(code, Some(4001));
    assert_eq!(frames[0]["message"], "no auth frame in time");
    app.stop().await;
}

#[actix_rt::test]
async fn users_subscribe_only_to_their_own_accounts() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let account = connected_account(&app, &alice, PHONE).await;

    let (mut ws, _) = authed(&app, &bob).await;
    let topic = format!("account:{account}");
    send(
        &mut ws,
        json!({"type": "subscribe", "id": 1, "topic": topic, "since": null}),
    )
    .await;
    let err = recv(&mut ws).await;
    assert_eq!(
        (err["type"].as_str(), err["code"].as_str(), &err["id"]),
        (Some("error"), Some("not_found"), &json!(1))
    );
    send(
        &mut ws,
        json!({"type": "subscribe", "id": 2, "topic": "user:1"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["code"], "invalid_topic");
    send(
        &mut ws,
        json!({"type": "unsubscribe", "id": 3, "topic": topic}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["code"], "not_subscribed");

    // Alice gets it, with the account's history.
    let (mut ws, _) = authed(&app, &alice).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "s", "topic": topic, "since": 0}),
    )
    .await;
    let sub = recv(&mut ws).await;
    assert_eq!(
        (sub["type"].as_str(), sub["recovered"].as_bool()),
        (Some("subscribed"), Some(true))
    );
    let first = recv(&mut ws).await;
    assert_eq!(first["type"], "event");
    assert_eq!(first["topic"], topic.as_str());
    assert!(first["offset"].as_i64().unwrap() <= sub["offset"].as_i64().unwrap());
    send(
        &mut ws,
        json!({"type": "unsubscribe", "id": "u", "topic": topic}),
    )
    .await;
    loop {
        let f = recv(&mut ws).await;
        if f["type"] == "unsubscribed" {
            assert_eq!(f["id"], "u");
            break;
        }
        assert_eq!(f["type"], "event", "{f}");
    }
    app.stop().await;
}

/// The sequence numbers of `test.tick` events in `frames`.
fn ticks(frames: &[Value]) -> Vec<i64> {
    frames
        .iter()
        .filter(|f| f["type"] == "event" && f["event"] == "test.tick")
        .map(|f| f["data"]["seq"].as_i64().unwrap())
        .collect()
}

#[actix_rt::test]
async fn a_reconnect_with_since_misses_nothing_and_repeats_nothing_while_events_keep_coming() {
    let app = spawn_app().await;
    let (token, _, topic) = alice_with_account(&app).await;
    const TOTAL: i64 = 400;

    let (mut ws, _) = authed(&app, &token).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": 1, "topic": topic, "since": null}),
    )
    .await;
    let sub = recv(&mut ws).await;
    assert_eq!(sub["type"], "subscribed");

    // Events keep coming the whole time.
    let writer = app.events.writer(&topic);
    let publisher = actix_rt::spawn(async move {
        for seq in 0..TOTAL {
            writer
                .append("test.tick", json!({ "seq": seq }))
                .await
                .unwrap();
        }
    });

    // The first connection reads a while, then drops.
    let mut frames = Vec::new();
    let mut last_offset = sub["offset"].as_i64().unwrap();
    while ticks(&frames).len() < 50 {
        let f = recv(&mut ws).await;
        if f["type"] == "event" {
            let offset = f["offset"].as_i64().unwrap();
            assert!(offset > last_offset, "offsets increase");
            last_offset = offset;
        }
        frames.push(f);
    }
    drop(ws);

    // The second resumes from the last offset it saw, replay turning live
    // while the publisher is still going.
    let (mut ws, _) = authed(&app, &token).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": 2, "topic": topic, "since": last_offset}),
    )
    .await;
    let sub = recv(&mut ws).await;
    assert_eq!(
        (sub["type"].as_str(), sub["recovered"].as_bool()),
        (Some("subscribed"), Some(true))
    );
    while ticks(&frames).last() != Some(&(TOTAL - 1)) {
        let f = recv(&mut ws).await;
        if f["type"] == "event" {
            let offset = f["offset"].as_i64().unwrap();
            assert!(offset > last_offset, "no event twice, none out of order");
            last_offset = offset;
        }
        frames.push(f);
    }
    publisher.await.unwrap();
    assert_eq!(
        ticks(&frames),
        (0..TOTAL).collect::<Vec<_>>(),
        "every event once, in order"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn an_offset_the_log_never_handed_out_requires_a_resync() {
    let app = spawn_app().await;
    let (token, _, topic) = alice_with_account(&app).await;
    let (mut ws, _) = authed(&app, &token).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": 1, "topic": topic, "since": 1_000_000_000}),
    )
    .await;
    let (code, frames) = closed(&mut ws).await;
    assert_eq!(frames[0]["type"], "subscribed");
    assert_eq!(frames[0]["recovered"], false);
    assert_eq!(code, Some(4011));
    app.stop().await;
}

#[actix_rt::test]
async fn send_frames_go_through_the_outbox_like_post_messages() {
    let app = spawn_app().await;
    let (token, account, topic) = alice_with_account(&app).await;
    let (mut ws, _) = authed(&app, &token).await;
    subscribe_live(&mut ws, &topic).await;

    let frame = json!({"type": "send", "id": 7, "account": account, "chat": "me", "text": "over the socket", "idempotency_key": "ws-1"});
    send(&mut ws, frame.clone()).await;
    let ack = loop {
        let f = recv(&mut ws).await;
        if f["type"] == "ack" {
            break f;
        }
    };
    assert_eq!(
        (ack["id"].as_i64(), ack["status"].as_str()),
        (Some(7), Some("queued"))
    );
    let message_id = ack["message_id"].as_i64().unwrap();
    // Its delivery shows up on the subscription.
    loop {
        let f = recv(&mut ws).await;
        if f["type"] == "event"
            && f["event"] == "message.status"
            && f["data"]["message_id"] == message_id
            && f["data"]["status"] == "sent"
        {
            break;
        }
    }
    // A retry with the same key is the same message.
    send(&mut ws, frame).await;
    let again = loop {
        let f = recv(&mut ws).await;
        if f["type"] == "ack" {
            break f;
        }
    };
    assert_eq!(
        (again["message_id"].as_i64(), again["replayed"].as_bool()),
        (Some(message_id), Some(true))
    );
    // Bad input: the same codes as the HTTP API.
    send(
        &mut ws,
        json!({"type": "send", "id": 8, "account": account, "chat": "me", "text": ""}),
    )
    .await;
    let err = loop {
        let f = recv(&mut ws).await;
        if f["type"] == "error" {
            break f;
        }
    };
    assert_eq!(
        (
            err["id"].as_i64(),
            err["code"].as_str(),
            err["field"].as_str()
        ),
        (Some(8), Some("invalid_input"), Some("text"))
    );
    send(
        &mut ws,
        json!({"type": "send", "id": 9, "account": account + 1000, "chat": "me", "text": "x"}),
    )
    .await;
    let err = loop {
        let f = recv(&mut ws).await;
        if f["type"] == "error" {
            break f;
        }
    };
    assert_eq!(
        (err["id"].as_i64(), err["code"].as_str()),
        (Some(9), Some("not_found"))
    );
    app.stop().await;
}

#[actix_rt::test]
async fn connection_limits_per_user_and_in_total() {
    let app = spawn_app_with(|f| f.merge(("rate_limits.websocket.connections.total", 5))).await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(authed(&app, &alice).await.0);
    }
    let mut fourth = connect(&app, Some(&alice)).await;
    let (code, frames) = closed(&mut fourth).await;
    assert_eq!(code, Some(4009));
    assert_eq!(frames[0]["code"], "too_many_connections");
    // Closing one frees a slot.
    open.pop().unwrap().close(None).await.unwrap();
    let mut again = None;
    for _ in 0..100 {
        let mut ws = connect(&app, Some(&alice)).await;
        let f = recv(&mut ws).await;
        if f["type"] == "auth_ok" {
            again = Some(ws);
            break;
        }
        // The closed one may not be released yet: try again once it is.
        assert_eq!(f["code"], "too_many_connections");
        tokio::task::yield_now().await;
    }
    open.push(again.expect("a slot frees up"));
    // Total: 3 of alice's + 2 of bob's fill it.
    open.push(authed(&app, &bob).await.0);
    open.push(authed(&app, &bob).await.0);
    let mut sixth = connect(&app, Some(&bob)).await;
    let (code, _) = closed(&mut sixth).await;
    assert_eq!(code, Some(4009));
    // A user's own limit is that user's doing; the service's full house is
    // the service's.
    let family = "tgvisor_ws_disconnects_total";
    scrape_until(&app, "both refusals counted with their fault", |s| {
        sample_sum(s, family, &[r#"reason="at_capacity""#, r#"fault="server""#]) == 1.0
            && sample_sum(
                s,
                family,
                &[r#"reason="too_many_connections""#, r#"fault="client""#],
            ) >= 1.0
    })
    .await;
    app.stop().await;
}

#[actix_rt::test]
async fn frame_size_and_rate_limits_close_with_4008_after_an_error_frame() {
    let app = spawn_app_with(|f| f.merge(("rate_limits.websocket.messages.max", 5))).await;
    let (_, token) = app.user("alice").await;

    let (mut ws, _) = authed(&app, &token).await;
    let big = "x".repeat(5000);
    send(&mut ws, json!({"type": "ping", "id": big})).await;
    let (code, frames) = closed(&mut ws).await;
    assert_eq!(code, Some(4008));
    assert_eq!(frames[0]["code"], "frame_too_large");

    let (mut ws, _) = authed(&app, &token).await;
    for i in 0..5 {
        send(&mut ws, json!({"type": "ping", "id": i})).await;
        assert_eq!(recv(&mut ws).await["type"], "pong");
    }
    send(&mut ws, json!({"type": "ping", "id": 5})).await;
    let (code, frames) = closed(&mut ws).await;
    assert_eq!(code, Some(4008));
    assert_eq!(frames[0]["code"], "rate_limited");
    assert!(frames[0]["retry_after_ms"].as_u64().unwrap() > 0);
    app.stop().await;
}

#[actix_rt::test]
async fn a_client_that_does_not_read_is_disconnected_as_a_slow_consumer() {
    let app = spawn_app_with(|f| f.merge(("websocket.send_queue", 4))).await;
    let (token, _, topic) = alice_with_account(&app).await;
    let (mut ws, _) = authed(&app, &token).await;
    subscribe_live(&mut ws, &topic).await;
    // The client stops reading; big events fill the socket, then the queue.
    let writer = app.events.writer(&topic);
    let payload = "y".repeat(64 * 1024);
    let mut n = 0;
    let slow = loop {
        writer
            .append("test.big", json!({ "blob": payload }))
            .await
            .unwrap();
        n += 1;
        let metrics = app.metrics().await;
        if metrics
            .contains("tgvisor_ws_disconnects_total{fault=\"client\",reason=\"slow_consumer\"} 1")
        {
            break true;
        }
        if n > 2000 {
            break false;
        }
    };
    assert!(slow, "the non-reading client is cut off");
    // What it reads now ends with the connection closing, not with more events.
    let (code, frames) = closed(&mut ws).await;
    // 4010 when the close frame got past the full socket; otherwise the
    // connection simply ends.
    assert!(matches!(code, Some(4010) | None), "{code:?}");
    assert!(
        frames.len() < n,
        "the backlog was dropped ({} of {n})",
        frames.len()
    );
    app.stop().await;
}

#[actix_rt::test]
async fn a_client_that_stops_answering_pings_is_closed() {
    let app = spawn_app_with(|f| {
        f.merge(("websocket.heartbeat_interval_ms", 50))
            .merge(("websocket.client_timeout_ms", 200))
    })
    .await;
    let (_, token) = app.user("alice").await;
    let (mut ws, _) = authed(&app, &token).await;
    // Not reading means not answering pings (tungstenite answers on read):
    // the server gives up on this client.
    let gave_up = async {
        loop {
            let metrics = app.metrics().await;
            if metrics.contains(
                "tgvisor_ws_disconnects_total{fault=\"client\",reason=\"heartbeat_timeout\"} 1",
            ) {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(FRAME_TIMEOUT, gave_up)
        .await
        .expect("closed for silence");
    // Reading now finds its pings, then the close.
    let mut pings = 0;
    let code = loop {
        match tokio::time::timeout(FRAME_TIMEOUT, ws.next())
            .await
            .expect("a frame")
        {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            other => panic!("unexpected: {other:?}"),
        }
    };
    assert!(pings >= 1, "it was pinged before");
    assert_eq!(code, Some(4008));
    app.stop().await;
}

#[actix_rt::test]
async fn shutdown_closes_clients_with_1001() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let (mut ws, _) = authed(&app, &token).await;
    let reader = actix_rt::spawn(async move { closed(&mut ws).await.0 });
    app.stop().await;
    assert_eq!(reader.await.unwrap(), Some(u16::from(CloseCode::Away)));
}

/// Reads one client item: a tick's sequence number goes into `seen`.
async fn next_tick(
    client: &mut tgvisor_client::Client,
    seen: &mut Vec<i64>,
    reconnected: &mut bool,
) {
    use tgvisor_client::Item;
    match tokio::time::timeout(FRAME_TIMEOUT, client.next())
        .await
        .expect("an item in time")
    {
        Some(Item::Event(e)) if e.kind == "test.tick" => {
            seen.push(e.data["seq"].as_i64().unwrap());
        }
        Some(Item::Reconnected) => *reconnected = true,
        Some(Item::Event(_)) => {}
        other => panic!("unexpected item: {other:?}"),
    }
}

/// A free TCP port on loopback (for an app that must come back on the same one).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[actix_rt::test]
async fn the_client_crate_carries_a_gap_free_stream_across_a_server_restart() {
    use tgvisor_client::{Backoff, Client, Config};
    let port = free_port();
    let app = spawn_app_with(|f| f.merge(("server.port", port))).await;
    let (token, _, topic) = alice_with_account(&app).await;

    let mut config = Config::new(ws_url(&app), token.as_str());
    // Up to 100 ms · (2^8 − 1) ≈ 25 s for the restart (PostgreSQL's is slower).
    config.reconnect = Backoff {
        base: Duration::from_millis(100),
        max_retries: 8,
        ..Backoff::default()
    };
    let mut client = Client::connect(config).await.expect("connects");
    client
        .subscribe(topic.clone(), None)
        .await
        .expect("subscribes");

    let publish = |app: &TestApp, range: std::ops::Range<i64>| {
        let writer = app.events.writer(&topic);
        actix_rt::spawn(async move {
            for seq in range {
                writer
                    .append("test.tick", json!({ "seq": seq }))
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    let mut reconnected = false;
    publish(&app, 0..100).await.unwrap();
    while seen.len() < 100 {
        next_tick(&mut client, &mut seen, &mut reconnected).await;
    }
    // The service restarts; meanwhile, and after, events keep coming.
    let app = app.restart_after(|| {}).await;
    let later = publish(&app, 100..200);
    while seen.last() != Some(&199) {
        next_tick(&mut client, &mut seen, &mut reconnected).await;
    }
    later.await.unwrap();
    assert!(reconnected, "the client said it reconnected");
    assert_eq!(
        seen,
        (0..200).collect::<Vec<_>>(),
        "every event once, in order"
    );
    client.close().await;
    app.stop().await;
}

/// Reads frames until tick `upto` arrives; panics on a close.
async fn read_ticks_until(ws: &mut Ws, frames: &mut Vec<Value>, upto: i64) {
    while ticks(frames).last() != Some(&upto) {
        let f = recv(ws).await;
        assert_ne!(f["type"], "error", "{f}");
        frames.push(f);
    }
}

#[actix_rt::test]
async fn a_replay_longer_than_the_send_queue_goes_at_the_clients_pace() {
    // A small queue, pings all the time, a backlog of big events many times
    // the queue, and live events while the client is not reading (more
    // than can be held back: they are read from the log instead).
    let app = spawn_app_with(|f| {
        f.merge(("websocket.send_queue", 8))
            .merge(("websocket.replay_page", 50))
            .merge(("websocket.heartbeat_interval_ms", 20))
    })
    .await;
    let (token, _, topic) = alice_with_account(&app).await;
    let writer = app.events.writer(&topic);
    let blob = "z".repeat(32 * 1024);
    for seq in 0..300 {
        writer
            .append("test.tick", json!({ "seq": seq, "blob": blob }))
            .await
            .unwrap();
    }
    let (mut ws, _) = authed(&app, &token).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": 1, "topic": topic, "since": 0}),
    )
    .await;
    for seq in 300..400 {
        writer
            .append("test.tick", json!({ "seq": seq }))
            .await
            .unwrap();
    }
    let mut frames = Vec::new();
    read_ticks_until(&mut ws, &mut frames, 399).await;
    assert_eq!(frames[0]["type"], "subscribed");
    assert_eq!(ticks(&frames), (0..400).collect::<Vec<_>>());
    let metrics = app.metrics().await;
    // Every reason is exported from the start; this one must still be 0.
    assert!(
        metrics
            .lines()
            .any(|l| l
                == "tgvisor_ws_disconnects_total{fault=\"client\",reason=\"slow_consumer\"} 0"),
        "{metrics}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn a_restarted_hub_catches_its_clients_up_from_the_log() {
    let app = spawn_app().await;
    let (token, _, topic) = alice_with_account(&app).await;
    let (mut ws, _) = authed(&app, &token).await;
    subscribe_live(&mut ws, &topic).await;
    let writer = app.events.writer(&topic);
    let mut frames = Vec::new();
    for seq in 0..50 {
        writer
            .append("test.tick", json!({ "seq": seq }))
            .await
            .unwrap();
    }
    read_ticks_until(&mut ws, &mut frames, 49).await;

    // The hub's pump dies; events committed while it is down never reach
    // the bus's subscriber, only the log.
    let mut supervision = app.supervision.subscribe();
    assert_eq!(app.inject_panic("root/ws-hub").await.status().as_u16(), 202);
    for seq in 50..100 {
        writer
            .append("test.tick", json!({ "seq": seq }))
            .await
            .unwrap();
    }
    crate::helpers::wait_for_event(
        &mut supervision,
        crate::helpers::is_started("root/ws-hub", 2),
    )
    .await;
    for seq in 100..150 {
        writer
            .append("test.tick", json!({ "seq": seq }))
            .await
            .unwrap();
    }
    read_ticks_until(&mut ws, &mut frames, 149).await;
    assert_eq!(ticks(&frames), (0..150).collect::<Vec<_>>());
    app.stop().await;
}

#[actix_rt::test]
async fn after_unsubscribed_no_frame_of_the_topic_follows_even_mid_replay() {
    let app = spawn_app_with(|f| f.merge(("websocket.replay_page", 10))).await;
    let (token, _, topic) = alice_with_account(&app).await;
    let writer = app.events.writer(&topic);
    for seq in 0..500 {
        writer
            .append("test.tick", json!({ "seq": seq }))
            .await
            .unwrap();
    }
    let (mut ws, _) = authed(&app, &token).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": 1, "topic": topic, "since": 0}),
    )
    .await;
    send(
        &mut ws,
        json!({"type": "unsubscribe", "id": 2, "topic": topic}),
    )
    .await;
    send(&mut ws, json!({"type": "ping", "id": 3})).await;
    let mut seen = Vec::new();
    loop {
        let f = recv(&mut ws).await;
        if f["type"] == "unsubscribed" {
            break;
        }
        seen.push(f);
    }
    // The replay was cut short: what it had queued came first, nothing after.
    assert!(ticks(&seen).len() < 500, "the replay stopped");
    assert_eq!(recv(&mut ws).await, json!({"type": "pong", "id": 3}));
    app.stop().await;
}

#[actix_rt::test]
async fn health_websocket_judges_the_frames_the_service_failed_not_the_clients_mistakes() {
    // One pooled connection, which the test can take away.
    let app = spawn_app_with(|f| {
        f.merge(("database.max_connections", 1))
            .merge(("database.min_connections", 1))
            .merge(("database.connect_timeout_ms", 500))
            .merge(("health.min_volume", 10))
    })
    .await;
    let (_, token) = app.user("alice").await;
    let (mut ws, _) = authed(&app, &token).await;
    let res = app.get("/health/websocket").await;
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["metrics"]["connections"], 1);
    assert_eq!(body["thresholds"]["error_rate"]["critical"], 0.05);

    // Half of this client's frames are its own mistakes: shown, not judged.
    for i in 0..5 {
        send(&mut ws, json!({"type": "ping", "id": i})).await;
        assert_eq!(recv(&mut ws).await["type"], "pong");
        ws.send(Message::text("not json")).await.unwrap();
        assert_eq!(recv(&mut ws).await["code"], "invalid_frame");
    }
    let res = app.get("/health/websocket").await;
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "healthy", "{body}");
    assert_eq!(body["metrics"]["error_rate"], 0.0, "{body}");
    assert!(
        (body["metrics"]["client_error_rate"].as_f64().unwrap() - 0.5).abs() < 1e-9,
        "{body}"
    );

    // The database is out of reach: subscribing fails on the service's side.
    let held = sea_orm::TransactionTrait::begin(&app.app_db).await.unwrap();
    for id in 0..2 {
        send(
            &mut ws,
            json!({"type": "subscribe", "id": id, "topic": "account:1", "since": null}),
        )
        .await;
        assert_eq!(recv(&mut ws).await["code"], "internal");
    }
    held.rollback().await.unwrap();
    let res = app.get("/health/websocket").await;
    assert_eq!(res.status().as_u16(), 503);
    let body: Value = res.json().await.unwrap();
    // 2 of 12 frames (over health.min_volume): over the critical 5 %.
    assert_eq!(body["status"], "unhealthy", "{body}");
    assert!(
        (body["metrics"]["error_rate"].as_f64().unwrap() - 2.0 / 12.0).abs() < 1e-9,
        "{body}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn a_revoked_token_ends_its_connections_and_a_removed_account_its_subscriptions() {
    let app = spawn_app_with(|f| f.merge(("websocket.heartbeat_interval_ms", 50))).await;
    let (token, account, topic) = alice_with_account(&app).await;
    let (mut ws, _) = authed(&app, &token).await;
    subscribe_live(&mut ws, &topic).await;

    // The account goes: so does the subscription, with a word why.
    let res = app
        .delete_auth(&format!("/api/v1/accounts/{account}"), &token)
        .await;
    assert_eq!(res.status().as_u16(), 204);
    let gone = loop {
        let f = recv(&mut ws).await;
        if f["type"] == "error" {
            break f;
        }
    };
    assert_eq!(gone["code"], "topic_removed");
    send(
        &mut ws,
        json!({"type": "unsubscribe", "id": 2, "topic": topic}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["code"], "not_subscribed");

    // Logging out everywhere revokes the token: the connection ends.
    let res = app
        .post_json("/api/v1/auth/logout-all", Some(&token), &json!({}))
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let (code, frames) = closed(&mut ws).await;
    assert_eq!(code, Some(4001));
    assert_eq!(frames.last().unwrap()["code"], "unauthorized");
    app.stop().await;
}

#[actix_rt::test]
async fn unauthenticated_connections_are_limited_per_address() {
    let app = spawn_app_with(|f| f.merge(("websocket.unauthenticated_per_ip", 2))).await;
    let (user_id, token) = app.user("alice").await;
    let mut first = connect(&app, None).await;
    let _second = connect(&app, None).await;
    let mut third = connect(&app, None).await;
    let (code, frames) = closed(&mut third).await;
    assert_eq!(code, Some(4009));
    assert_eq!(frames[0]["code"], "too_many_connections");
    // One authenticates: its address has room again.
    send(&mut first, json!({"type": "auth", "token": token})).await;
    assert_eq!(recv(&mut first).await["user_id"], user_id);
    let mut fourth = connect(&app, None).await;
    send(&mut fourth, json!({"type": "auth", "token": token})).await;
    assert_eq!(recv(&mut fourth).await["type"], "auth_ok");
    // A header-authenticated connection never waits, so never counts.
    let (mut fifth, _) = authed(&app, &token).await;
    send(&mut fifth, json!({"type": "ping", "id": 1})).await;
    assert_eq!(recv(&mut fifth).await["type"], "pong");
    app.stop().await;
}

#[actix_rt::test]
async fn an_offset_older_than_the_kept_history_requires_a_resync() {
    let app = spawn_app().await;
    let (token, _, topic) = alice_with_account(&app).await;
    let writer = app.events.writer(&topic);
    let mut offsets = Vec::new();
    for seq in 0..10 {
        let e = writer
            .append("test.tick", json!({ "seq": seq }))
            .await
            .unwrap();
        offsets.push(e.offset);
    }
    // Keep the newest 4 of the topic: ticks 6..=9.
    let db = app.db_conn().await;
    let pruned = tgvisor::events::prune(&db, Duration::from_secs(3600), 4)
        .await
        .unwrap();
    assert!(pruned >= 6, "{pruned}");
    assert_eq!(
        tgvisor::events::horizon(&db, &topic).await.unwrap(),
        offsets[5]
    );

    // Resuming from before the horizon: events are missing for good.
    let (mut ws, _) = authed(&app, &token).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": 1, "topic": topic, "since": offsets[2]}),
    )
    .await;
    let (code, frames) = closed(&mut ws).await;
    assert_eq!(
        (frames[0]["type"].as_str(), frames[0]["recovered"].as_bool()),
        (Some("subscribed"), Some(false))
    );
    assert_eq!(code, Some(4011));

    // From the horizon itself: nothing is missing.
    let (mut ws, _) = authed(&app, &token).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": 2, "topic": topic, "since": offsets[5]}),
    )
    .await;
    let sub = recv(&mut ws).await;
    assert_eq!(sub["recovered"], true);
    let mut frames = Vec::new();
    read_ticks_until(&mut ws, &mut frames, 9).await;
    assert_eq!(ticks(&frames), vec![6, 7, 8, 9]);
    drop(ws);

    // By age: everything older than now goes; the horizon never moves back.
    tgvisor::events::prune(&db, Duration::ZERO, 4)
        .await
        .unwrap();
    assert_eq!(
        tgvisor::events::horizon(&db, &topic).await.unwrap(),
        offsets[9]
    );
    tgvisor::events::prune(&db, Duration::from_secs(3600), 100)
        .await
        .unwrap();
    assert_eq!(
        tgvisor::events::horizon(&db, &topic).await.unwrap(),
        offsets[9]
    );
    app.stop().await;
}
