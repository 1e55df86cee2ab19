//! `POST /debug/events` (fault injection only): the WebSocket fan-out
//! benchmark's publisher appends `bench.tick` events through the topic's
//! writer; they land in the log in order, stamped and padded.

use crate::helpers::spawn_app;
use serde_json::{Value, json};

#[actix_rt::test]
async fn appends_bench_events_in_order() {
    let app = spawn_app().await;
    let topic = "account:4242";
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;

    let resp = app
        .post_json(
            "/debug/events",
            None,
            &json!({ "topic": topic, "count": 5, "size": 3 }),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["published"], 5);

    // A second batch continues the sequence.
    let resp = app
        .post_json(
            "/debug/events",
            None,
            &json!({ "topic": topic, "count": 2, "first_seq": 5 }),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let second: Value = resp.json().await.unwrap();
    assert_eq!(second["published"], 2);

    let events = tgvisor::events::since(app.events.db(), topic, 0, 100)
        .await
        .unwrap();
    assert_eq!(events.len(), 7);
    assert!(events.iter().all(|e| e.kind == "bench.tick"));
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e.data["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..7).collect::<Vec<_>>());
    assert!(events[..5].iter().all(|e| e.data["pad"] == "xxx"));
    assert!(events[5..].iter().all(|e| e.data["pad"] == ""));
    let stamps: Vec<u64> = events
        .iter()
        .map(|e| e.data["published_at_us"].as_u64().unwrap())
        .collect();
    assert!(stamps[0] >= before, "stamped when appended");
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    assert!(events.windows(2).all(|w| w[0].offset < w[1].offset));
    assert_eq!(body["last_offset"], events[4].offset);
    assert_eq!(second["last_offset"], events[6].offset);
    app.stop().await;
}

#[actix_rt::test]
async fn rejects_bad_bench_requests() {
    let app = spawn_app().await;
    for (body, field, reason) in [
        (
            json!({ "topic": "user:1", "count": 1 }),
            "topic",
            "invalid_format",
        ),
        (
            json!({ "topic": "account:0", "count": 1 }),
            "topic",
            "invalid_format",
        ),
        (
            json!({ "topic": "account:1", "count": 0 }),
            "count",
            "out_of_range",
        ),
        (
            json!({ "topic": "account:1", "count": 10001 }),
            "count",
            "out_of_range",
        ),
        (
            json!({ "topic": "account:1", "count": 1, "size": 65537 }),
            "size",
            "out_of_range",
        ),
    ] {
        let resp = app.post_json("/debug/events", None, &body).await;
        assert_eq!(resp.status().as_u16(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], "invalid_input", "{body}");
        assert_eq!(err["error"]["field"], field, "{body}");
        assert_eq!(err["error"]["reason"], reason, "{body}");
    }
    let resp = app
        .post_json(
            "/debug/events",
            None,
            &json!({ "topic": "account:1", "count": 1, "extra": true }),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "invalid_field");
    let events = tgvisor::events::since(app.events.db(), "account:1", 0, 10)
        .await
        .unwrap();
    assert!(events.is_empty());
    app.stop().await;
}
