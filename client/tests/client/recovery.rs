//! Reconnection, restoration, dedupe, resync and the terminal errors. The
//! clock is paused, so each backoff delay is checked exactly (1 s, 2 s, 4 s…).

use crate::fake_server::FakeServer;
use crate::{connected, event_of, queued_items, subscribed, sync};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tgvisor_client::{Error, Item, SendFrame};
use tokio::time::Instant;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn after_a_drop_the_client_reconnects_resubscribes_and_delivers_each_event_once_in_order() {
    // Arrange: three topics: one from nothing with events, one replayed from
    // an offset, one quiet.
    let mut server = FakeServer::start().await;
    let (mut client, mut conn) = connected(&mut server).await;
    let (a, _) = tokio::join!(
        client.subscribe("account:7", None),
        conn.answer(|r| subscribed(r, 10, true))
    );
    let (b, _) = tokio::join!(
        client.subscribe("account:8", Some(100)),
        conn.answer(|r| subscribed(r, 108, true))
    );
    let (c, _) = tokio::join!(
        client.subscribe("account:9", None),
        conn.answer(|r| subscribed(r, 20, true))
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    for (topic, offset) in [
        ("account:8", 105),
        ("account:8", 108),
        ("account:7", 11),
        ("account:7", 13),
    ] {
        conn.event(topic, offset).await;
    }
    sync(&client, &mut conn).await;
    let before: Vec<_> = queued_items(&mut client)
        .await
        .iter()
        .map(event_of)
        .collect();

    // Act: a send is in flight when the server goes away; it comes back
    // after refusing two upgrades.
    server.refuse([503, 503]);
    let message = SendFrame {
        account: 7,
        chat: "me".into(),
        text: "hi".into(),
        idempotency_key: "k".into(),
    };
    let (sent, dropped_at) = tokio::join!(client.send(message), async {
        conn.recv().await;
        drop(conn);
        Instant::now()
    });
    let first = server.attempt().await;
    let second = server.attempt().await;
    let (third_at, mut conn) = server.accept().await;
    let restores = [conn.recv().await, conn.recv().await, conn.recv().await];
    // Each answer carries the topic's latest offset.
    for (request, head) in restores.iter().zip([16, 110, 21]) {
        conn.send(subscribed(request, head, true)).await;
    }
    // The server replays from each offset, plus some already delivered.
    for (topic, offset) in [
        ("account:7", 11),
        ("account:7", 13),
        ("account:7", 15),
        ("account:8", 105),
        ("account:8", 108),
        ("account:8", 110),
        ("account:9", 21),
        ("account:7", 15),
        ("account:7", 16),
    ] {
        conn.event(topic, offset).await;
    }
    sync(&client, &mut conn).await;
    let after = queued_items(&mut client).await;

    // Assert
    assert_eq!(sent.unwrap_err(), Error::Disconnected);
    assert_eq!(
        [
            first.at - dropped_at,
            second.at - first.at,
            third_at - second.at
        ],
        [SECOND, 2 * SECOND, 4 * SECOND],
        "backoff delays"
    );
    assert_eq!(third_at.duration_since(dropped_at), 7 * SECOND);
    assert_eq!(first.authorization.as_deref(), Some("Bearer tok-123"));
    let restored: Vec<_> = restores
        .iter()
        .map(|r| (r["topic"].clone(), r["since"].clone()))
        .collect();
    assert_eq!(
        restored,
        [
            (json!("account:7"), json!(13)),
            (json!("account:8"), json!(108)),
            // Quiet since subscribing: resumes from the offset it was subscribed at.
            (json!("account:9"), json!(20)),
        ]
    );
    let mut seen = before;
    assert_eq!(after[0], Item::Reconnected);
    seen.extend(after[1..].iter().map(event_of));
    let seen: Vec<(&str, i64)> = seen.iter().map(|(t, o)| (t.as_str(), *o)).collect();
    assert_eq!(
        seen,
        [
            ("account:8", 105),
            ("account:8", 108),
            ("account:7", 11),
            ("account:7", 13),
            ("account:7", 15),
            ("account:8", 110),
            ("account:9", 21),
            ("account:7", 16),
        ]
    );
    assert_eq!(
        client.offsets(),
        HashMap::from([
            ("account:7".into(), 16),
            ("account:8".into(), 110),
            ("account:9".into(), 21)
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn an_unauthorized_close_stops_the_client_without_retrying() {
    let mut server = FakeServer::start().await;
    let (mut client, conn) = connected(&mut server).await;

    conn.close(4001, "token revoked").await;

    let item = client.next().await;
    assert!(
        matches!(item, Some(Item::Closed(Error::Unauthorized { ref reason })) if reason.contains("token revoked")),
        "{item:?}"
    );
    // The stream ends: the task is gone, so no attempt can follow.
    assert_eq!(client.next().await, None);
    assert_eq!(server.untaken_attempts(), 0);
    assert_eq!(client.ping().await, Err(Error::Closed));
}

#[tokio::test(start_paused = true)]
async fn a_token_refused_on_reconnection_stops_the_client() {
    let mut server = FakeServer::start().await;
    let (mut client, conn) = connected(&mut server).await;
    server.refuse([401]);

    drop(conn);

    let refused = server.attempt().await;
    assert!(refused.conn.is_none());
    let item = client.next().await;
    assert!(
        matches!(item, Some(Item::Closed(Error::Unauthorized { .. }))),
        "{item:?}"
    );
    assert_eq!(client.next().await, None);
    assert_eq!(server.untaken_attempts(), 0);
}

#[tokio::test(start_paused = true)]
async fn when_every_retry_fails_the_client_reports_a_terminal_error() {
    let mut server = FakeServer::start().await;
    let (mut client, conn) = connected(&mut server).await;
    server.refuse_all(503);

    drop(conn);
    let dropped_at = Instant::now();

    let mut times = vec![dropped_at];
    for _ in 0..5 {
        let attempt = server.attempt().await;
        assert!(attempt.conn.is_none());
        times.push(attempt.at);
    }
    let gaps: Vec<u64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert_eq!(gaps, [1, 2, 4, 8, 16]);
    let item = client.next().await;
    assert!(
        matches!(item, Some(Item::Closed(Error::RetriesExhausted { attempts: 5, ref last })) if last.contains("503")),
        "{item:?}"
    );
    assert_eq!(client.next().await, None);
    assert_eq!(server.untaken_attempts(), 0, "no sixth attempt");
}

#[tokio::test(start_paused = true)]
async fn too_many_connections_is_retried_with_backoff_and_a_servers_retry_after() {
    let mut server = FakeServer::start().await;
    let (mut client, conn) = connected(&mut server).await;

    drop(conn);
    let dropped_at = Instant::now();
    // Accepted, then closed at once: that still counts as a failed attempt.
    let (first_at, first) = server.accept().await;
    first.close(4009, "too many connections").await;
    let (second_at, mut second) = server.accept().await;
    let warning = json!({"type": "error", "code": "rate_limited", "message": "slow down", "retry_after_ms": 5000});
    second.send(warning).await;
    second.close(4008, "rate limited").await;
    let (third_at, mut third) = server.accept().await;
    sync(&client, &mut third).await;

    assert_eq!(
        [first_at - dropped_at, second_at - first_at],
        [SECOND, 2 * SECOND]
    );
    // 4 s by the backoff, but the server asked for 5.
    assert_eq!(third_at - second_at, 5 * SECOND);
    let items = queued_items(&mut client).await;
    assert_eq!(items.iter().filter(|i| **i == Item::Reconnected).count(), 3);
    assert!(
        items
            .iter()
            .any(|i| matches!(i, Item::ServerError(e) if e.retry_after == Some(5 * SECOND))),
        "{items:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_resync_close_reports_the_named_topic_and_resubscribes_it_from_nothing() {
    let mut server = FakeServer::start().await;
    let (mut client, mut conn) = connected(&mut server).await;
    let (a, _) = tokio::join!(
        client.subscribe("account:7", Some(5)),
        conn.answer(|r| subscribed(r, 6, true))
    );
    let (b, _) = tokio::join!(
        client.subscribe("account:8", Some(50)),
        conn.answer(|r| subscribed(r, 50, true))
    );
    a.unwrap();
    b.unwrap();
    conn.event("account:7", 6).await;
    sync(&client, &mut conn).await;

    conn.close(4011, "offset gone for account:8").await;
    let (_, mut conn) = server.accept().await;
    let restores = [conn.recv().await, conn.recv().await];
    conn.send(subscribed(&restores[0], 6, true)).await;
    conn.send(subscribed(&restores[1], 900, true)).await;
    conn.event("account:8", 901).await;
    sync(&client, &mut conn).await;

    let items = queued_items(&mut client).await;
    assert_eq!(event_of(&items[0]), ("account:7".into(), 6));
    assert_eq!(
        items[1],
        Item::Resync {
            topic: "account:8".into()
        }
    );
    assert_eq!(items[2], Item::Reconnected);
    assert_eq!(event_of(&items[3]), ("account:8".into(), 901));
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(
        (&restores[0]["topic"], &restores[0]["since"]),
        (&json!("account:7"), &json!(6))
    );
    assert_eq!(
        (&restores[1]["topic"], &restores[1]["since"]),
        (&json!("account:8"), &json!(null))
    );
}

#[tokio::test(start_paused = true)]
async fn a_resync_close_during_restoration_reports_the_topic_being_restored() {
    let mut server = FakeServer::start().await;
    let (mut client, mut conn) = connected(&mut server).await;
    let (a, _) = tokio::join!(
        client.subscribe("account:7", Some(5)),
        conn.answer(|r| subscribed(r, 5, true))
    );
    a.unwrap();
    drop(conn);

    // The offset is too old for the restarted server: it closes with 4011, no reason.
    let (_, mut conn) = server.accept().await;
    let restore = conn.recv().await;
    conn.close(4011, "").await;
    let (_, mut conn) = server.accept().await;
    let again = conn.answer(|r| subscribed(r, 70, true)).await;
    sync(&client, &mut conn).await;

    assert_eq!(restore["since"], json!(5));
    assert_eq!(again["since"], json!(null));
    let items = queued_items(&mut client).await;
    assert_eq!(
        items,
        [
            Item::Reconnected,
            Item::Resync {
                topic: "account:7".into()
            },
            Item::Reconnected
        ]
    );
    assert_eq!(client.offsets(), HashMap::from([("account:7".into(), 70)]));
}

#[tokio::test(start_paused = true)]
async fn an_unrecovered_subscription_reports_a_resync_and_carries_on_live() {
    let mut server = FakeServer::start().await;
    let (mut client, mut conn) = connected(&mut server).await;
    let (a, _) = tokio::join!(
        client.subscribe("account:7", Some(5)),
        conn.answer(|r| subscribed(r, 5, true))
    );
    a.unwrap();
    drop(conn);

    let (_, mut conn) = server.accept().await;
    conn.answer(|r| subscribed(r, 90, false)).await;
    conn.event("account:7", 91).await;
    sync(&client, &mut conn).await;

    let items = queued_items(&mut client).await;
    assert_eq!(
        items[..2],
        [
            Item::Reconnected,
            Item::Resync {
                topic: "account:7".into()
            }
        ]
    );
    assert_eq!(event_of(&items[2]), ("account:7".into(), 91));
    assert_eq!(client.offsets(), HashMap::from([("account:7".into(), 91)]));
}

#[tokio::test(start_paused = true)]
async fn subscribing_from_an_offset_the_server_no_longer_has_fails_with_resync_required() {
    let mut server = FakeServer::start().await;
    let (mut client, mut conn) = connected(&mut server).await;

    let (subscription, ()) = tokio::join!(client.subscribe("account:7", Some(1)), async {
        conn.recv().await;
        conn.close(4011, "account:7").await;
    });

    assert_eq!(
        subscription.unwrap_err(),
        Error::ResyncRequired {
            topic: "account:7".into()
        }
    );
    let (_, mut conn) = server.accept().await;
    sync(&client, &mut conn).await;
    // It was never subscribed: nothing to restore, no resync item.
    assert_eq!(queued_items(&mut client).await, [Item::Reconnected]);
    assert!(client.offsets().is_empty());
}
