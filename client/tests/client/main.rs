//! Integration tests: a real client against a scripted fake server.

mod fake_server;
mod recovery;
mod requests;

use fake_server::{Conn, FakeServer};
use serde_json::{Value, json};
use std::time::Duration;
use tgvisor_client::{Backoff, Client, Config, Item};

/// The token the tests authenticate with.
const TOKEN: &str = "tok-123";

/// A client configuration for `server`: the default retry policy (5 tries
/// from 1 s) without jitter, so the paused clock can check each delay.
fn config(server: &FakeServer) -> Config {
    let mut config = Config::new(server.url(), TOKEN);
    config.reconnect = Backoff {
        jitter: false,
        ..Backoff::default()
    };
    config
}

/// A client connected to `server`, and the server's side of the connection.
async fn connected(server: &mut FakeServer) -> (Client, Conn) {
    let (client, (_, conn)) = tokio::join!(Client::connect(config(server)), server.accept());
    (client.unwrap(), conn)
}

/// The `subscribed` answer to a subscribe request.
fn subscribed(request: &Value, offset: i64, recovered: bool) -> Value {
    json!({
        "type": "subscribed", "id": request["id"], "topic": request["topic"],
        "offset": offset, "recovered": recovered
    })
}

/// Round-trips a ping: once it returns, the client has handled every frame
/// the server sent before the pong, so their items are all queued.
async fn sync(client: &Client, conn: &mut Conn) {
    let (pong, _) = tokio::join!(
        client.ping(),
        conn.answer(|ping| json!({"type": "pong", "id": ping["id"]}))
    );
    pong.unwrap();
}

/// The items queued now, without waiting for more.
async fn queued_items(client: &mut Client) -> Vec<Item> {
    let mut items = Vec::new();
    while let Ok(Some(item)) = tokio::time::timeout(Duration::ZERO, client.next()).await {
        items.push(item);
    }
    items
}

/// `(topic, offset)` of an event item; panics on anything else.
fn event_of(item: &Item) -> (String, i64) {
    match item {
        Item::Event(event) => (event.topic.clone(), event.offset),
        other => panic!("expected an event, got {other:?}"),
    }
}
