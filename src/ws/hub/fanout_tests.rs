//! The fan-out (shards, subscriptions, outlets) without the network: real
//! actix-ws sessions whose response bodies the tests read frame by frame,
//! and a recorder standing in for the connection's actor.

use super::*;
use crate::metrics::ws::FrameKind;
use crate::ws::outlet::{Out, Outlet, PushError};
use crate::ws::subscription::Subscription;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::http::header;
use actix_web::{FromRequest, web};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};

/// Stands in for a connection's actor: records what it is told.
struct Recorder(Arc<Mutex<Vec<Control>>>);

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<Control> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: Control, _: &mut Context<Self>) {
        lock(&self.0).push(msg);
    }
}

fn recorder() -> (Recipient<Control>, Arc<Mutex<Vec<Control>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    (Recorder(seen.clone()).start().recipient(), seen)
}

fn metrics() -> WsMetrics {
    WsMetrics::new(&prometheus::Registry::new()).expect("metrics")
}

fn hub(fanout_queue: usize) -> WsHub {
    let limits = WsConnections {
        per_user: 3,
        total: 100,
    };
    WsHub::with_fanout_queue(limits, metrics(), fanout_queue)
}

/// An outlet on a real actix-ws session, and the response body that
/// carries what the session is given.
async fn outlet(cap: usize) -> (Arc<Outlet>, Body) {
    let (req, mut payload) = actix_web::test::TestRequest::default()
        .insert_header((header::UPGRADE, "websocket"))
        .insert_header((header::CONNECTION, "upgrade"))
        .insert_header((header::SEC_WEBSOCKET_VERSION, "13"))
        .insert_header((header::SEC_WEBSOCKET_KEY, "x3JJHMbDL1EzLkh9GBhXDw=="))
        .to_http_parts();
    let payload = web::Payload::from_request(&req, &mut payload)
        .await
        .expect("payload");
    let (response, session, stream) = actix_ws::handle(&req, payload).expect("handshake");
    let body = Body {
        body: response.into_body(),
        buf: Vec::new(),
        _stream: stream,
    };
    (Arc::new(Outlet::new(session, cap, metrics())), body)
}

/// A WebSocket response body, read as frames.
struct Body {
    body: BoxBody,
    buf: Vec<u8>,
    _stream: actix_ws::MessageStream,
}

#[derive(Debug, PartialEq)]
enum Frame {
    Text(String),
    Close(u16),
    Other(u8),
}

impl Body {
    /// The frames written so far (without waiting for more).
    fn frames(&mut self) -> Vec<Frame> {
        let mut cx = TaskContext::from_waker(Waker::noop());
        while let Poll::Ready(Some(chunk)) = Pin::new(&mut self.body).poll_next(&mut cx) {
            self.buf.extend_from_slice(&chunk.expect("body chunk"));
        }
        let mut frames = Vec::new();
        loop {
            let b = &self.buf;
            if b.len() < 2 {
                break;
            }
            let (len, at) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
                126 => break,
                n => (usize::from(n), 2),
            };
            if b.len() < at + len {
                break;
            }
            let payload = &b[at..at + len];
            frames.push(match b[0] & 0x0f {
                1 => Frame::Text(String::from_utf8(payload.to_vec()).expect("utf-8")),
                8 if payload.len() >= 2 => {
                    Frame::Close(u16::from_be_bytes([payload[0], payload[1]]))
                }
                // No status code.
                8 => Frame::Close(1005),
                op => Frame::Other(op),
            });
            self.buf.drain(..at + len);
        }
        frames
    }

    /// The offsets of the event frames written so far.
    fn offsets(&mut self) -> Vec<i64> {
        self.frames()
            .into_iter()
            .map(|f| match f {
                Frame::Text(t) => {
                    let v: serde_json::Value = serde_json::from_str(&t).expect("json");
                    v["offset"].as_i64().expect("offset")
                }
                other => panic!("not an event frame: {other:?}"),
            })
            .collect()
    }
}

fn event(topic: &str, offset: i64) -> StoredEvent {
    StoredEvent {
        offset,
        topic: topic.to_owned(),
        kind: "test".to_owned(),
        data: serde_json::json!({}),
        created_at: chrono::Utc::now().fixed_offset(),
    }
}

fn text(n: usize) -> Out {
    Out::Text(format!("{n}").into(), None, FrameKind::Reply)
}

/// Lets the runtime's other tasks (shards, writers, actors) run until
/// `done` holds: the runtime is single-threaded, so each round runs
/// whatever was woken.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition not reached");
}

/// A yield of some rounds, for checking that something does *not* happen.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Connection 1, subscribed live to [`TOPIC`] from offset 0: its
/// subscription, outlet (queue of `queue`), response body, and what its
/// actor is told.
struct Live {
    sub: Arc<Subscription>,
    out: Arc<Outlet>,
    body: Body,
    seen: Arc<Mutex<Vec<Control>>>,
}

async fn live(hub: &WsHub, queue: usize) -> Live {
    let (out, body) = outlet(queue).await;
    let (addr, seen) = recorder();
    let sub = Arc::new(Subscription::new(out.clone(), addr, 0, 64));
    sub.go_live();
    hub.shard().subscribe(TOPIC, 1, sub.clone());
    Live {
        sub,
        out,
        body,
        seen,
    }
}

const TOPIC: &str = "account:1";

#[actix_rt::test]
async fn live_events_reach_the_connection_in_order_once_and_only_for_its_topic() {
    let hub = hub(64);
    let Live { mut body, seen, .. } = live(&hub, 16).await;
    for offset in [1, 2, 2, 1, 3] {
        hub.dispatch(&event(TOPIC, offset));
    }
    hub.dispatch(&event("account:2", 4));
    let mut got = Vec::new();
    until(|| {
        got.extend(body.offsets());
        got.len() >= 3
    })
    .await;
    settle().await;
    got.extend(body.offsets());
    assert_eq!(got, [1, 2, 3]);
    assert!(lock(&seen).is_empty());
}

#[actix_rt::test]
async fn a_full_fanout_queue_sends_subscribers_to_the_log_before_anything_newer() {
    let hub = hub(2);
    let Live {
        sub,
        mut body,
        seen,
        ..
    } = live(&hub, 16).await;
    // The shard's task cannot run in between: 3 to 5 find its queue full.
    for offset in 1..=5 {
        hub.dispatch(&event(TOPIC, offset));
    }
    until(|| !lock(&seen).is_empty()).await;
    settle().await;
    assert_eq!(*lock(&seen), [Control::CatchUp]);
    // Nothing went out live past the gap; what was queued is held back
    // behind the log reading the actor starts.
    assert_eq!(body.offsets(), Vec::<i64>::new());
    assert_eq!(sub.reading(), Some((vec![1, 2], false)));
    hub.dispatch(&event(TOPIC, 6));
    until(|| sub.reading() == Some((vec![1, 2, 6], false))).await;
}

#[actix_rt::test]
async fn a_restarted_pump_sends_every_connection_to_the_log_once() {
    let hub = hub(64);
    let shard = hub.shard();
    let (out1, _body1) = outlet(16).await;
    let (out2, _body2) = outlet(16).await;
    let (addr1, seen1) = recorder();
    let (addr2, seen2) = recorder();
    // Connection 1 follows two topics, connection 2 one; connection 2's
    // subscription is reading the log already.
    let a = Arc::new(Subscription::new(out1.clone(), addr1.clone(), 5, 64));
    let b = Arc::new(Subscription::new(out1, addr1, 7, 64));
    let c = Arc::new(Subscription::new(out2, addr2, 0, 64));
    a.go_live();
    b.go_live();
    shard.subscribe(TOPIC, 1, a.clone());
    shard.subscribe("account:2", 1, b.clone());
    shard.subscribe(TOPIC, 2, c.clone());
    hub.catch_up_all();
    until(|| !lock(&seen1).is_empty()).await;
    settle().await;
    assert_eq!(*lock(&seen1), [Control::CatchUp]);
    assert_eq!(a.reading(), Some((vec![], false)));
    assert_eq!(b.reading(), Some((vec![], false)));
    // Reading already: it reads once more, and its actor needs no word.
    assert!(lock(&seen2).is_empty());
    assert_eq!(c.reading(), Some((vec![], true)));
}

#[actix_rt::test]
async fn held_events_past_the_cap_are_dropped_for_another_log_read() {
    let hub = hub(64);
    let (out, _body) = outlet(16).await;
    let (addr, _seen) = recorder();
    // Reading the log (as a new subscription does); 3 held at most.
    let sub = Arc::new(Subscription::new(out, addr, 0, 3));
    hub.shard().subscribe(TOPIC, 1, sub.clone());
    for offset in 1..=3 {
        hub.dispatch(&event(TOPIC, offset));
    }
    until(|| sub.reading() == Some((vec![1, 2, 3], false))).await;
    for offset in 4..=6 {
        hub.dispatch(&event(TOPIC, offset));
    }
    until(|| sub.reading() == Some((vec![], true))).await;
}

#[actix_rt::test]
async fn a_subscriber_that_cannot_keep_up_is_reported_once() {
    let hub = hub(256);
    // Nobody reads the body: actix-ws's channel (32) fills, then the
    // outlet's queue (4).
    let Live {
        out,
        seen,
        body: _body,
        ..
    } = live(&hub, 4).await;
    for offset in 1..=100 {
        hub.dispatch(&event(TOPIC, offset));
    }
    until(|| !lock(&seen).is_empty()).await;
    settle().await;
    assert_eq!(*lock(&seen), [Control::SlowConsumer]);
    assert_eq!(out.push(text(0)), Err(PushError::Full));
}

#[actix_rt::test]
async fn a_removed_topic_ends_its_subscriptions() {
    let hub = hub(64);
    let Live { mut body, seen, .. } = live(&hub, 16).await;
    hub.drop_topic(TOPIC);
    until(|| !lock(&seen).is_empty()).await;
    assert_eq!(*lock(&seen), [Control::TopicGone(TOPIC.to_owned())]);
    hub.dispatch(&event(TOPIC, 1));
    settle().await;
    assert_eq!(body.offsets(), Vec::<i64>::new());
}

#[actix_rt::test]
async fn frames_keep_their_order_between_the_session_and_the_queue() {
    let (out, mut body) = outlet(64).await;
    // 32 fit in actix-ws's channel; the rest wait in the outlet.
    for n in 0..40 {
        out.push(text(n)).expect("room");
    }
    // The client reads what the session holds; the session has room again
    // while 8 still wait: the next frame must not overtake them.
    let mut got = body.frames();
    assert_eq!(got.len(), 32);
    out.push(text(40)).expect("room");
    let writer = actix_rt::spawn(super::super::outlet::write(out.clone()));
    until(|| {
        got.extend(body.frames());
        got.len() >= 41
    })
    .await;
    // More while the writer is idle, then the end.
    out.push(text(41)).expect("room");
    out.finish();
    until(|| {
        got.extend(body.frames());
        got.len() >= 43
    })
    .await;
    let expected: Vec<Frame> = (0..=41)
        .map(|n| Frame::Text(n.to_string()))
        .chain([Frame::Close(1005)])
        .collect();
    assert_eq!(got, expected);
    until(|| writer.is_finished()).await;
    assert_eq!(out.push(text(42)), Err(PushError::Closed));
}

#[actix_rt::test]
async fn a_replay_waits_for_room_and_leaves_headroom() {
    let (out, mut body) = outlet(4).await;
    for n in 0..32 {
        out.push(text(n)).expect("room");
    }
    // The session is full; the queue holds 2 of 4: a replay with a
    // headroom of 2 must wait.
    out.push(text(32)).expect("room");
    out.push(text(33)).expect("room");
    let done = Arc::new(AtomicBool::new(false));
    let replay = {
        let (out, done) = (out.clone(), done.clone());
        actix_rt::spawn(async move {
            out.put(text(34), 2).await.expect("put");
            done.store(true, Ordering::SeqCst);
        })
    };
    settle().await;
    assert!(!done.load(Ordering::SeqCst));
    // Pings and replies still get in meanwhile.
    out.push(text(100)).expect("room for a reply");
    let _writer = actix_rt::spawn(super::super::outlet::write(out.clone()));
    let mut got = Vec::new();
    until(|| {
        got.extend(body.frames());
        done.load(Ordering::SeqCst) && got.len() >= 36
    })
    .await;
    replay.await.expect("replay task");
    let texts: Vec<String> = got
        .into_iter()
        .map(|f| match f {
            Frame::Text(t) => t,
            other => panic!("{other:?}"),
        })
        .collect();
    let expected: Vec<String> = (0..34)
        .chain([100, 34])
        .map(|n: usize| n.to_string())
        .collect();
    assert_eq!(texts, expected);
}

#[actix_rt::test]
async fn a_burst_to_a_reader_that_keeps_up_is_no_slow_consumer() {
    let hub = hub(256);
    let Live {
        out,
        mut body,
        seen,
        ..
    } = live(&hub, 4).await;
    let _writer = actix_rt::spawn(super::super::outlet::write(out));
    // The client reads whenever its thread lets it.
    let got = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let got = got.clone();
        actix_rt::spawn(async move {
            loop {
                let offsets = body.offsets();
                let n = {
                    let mut got = lock(&got);
                    got.extend(offsets);
                    got.len()
                };
                if n >= 100 {
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    // 100 events at once: far more than the session (32) and the queue (4)
    // hold; the shard must let the writing happen as it goes.
    for offset in 1..=100 {
        hub.dispatch(&event(TOPIC, offset));
    }
    until(|| reader.is_finished()).await;
    assert!(lock(&seen).is_empty(), "{:?}", lock(&seen));
    assert_eq!(*lock(&got), (1..=100).collect::<Vec<i64>>());
}

#[actix_rt::test]
async fn a_closed_connection_leaves_the_shard_on_the_next_event() {
    let hub = hub(64);
    let shard = hub.shard();
    let Live {
        out, body: _body, ..
    } = live(&hub, 16).await;
    // Its actor died without unsubscribing; the close went out.
    out.finish();
    hub.dispatch(&event(TOPIC, 1));
    until(|| shard.is_empty()).await;
}
