//! A real WebSocket client (tokio-tungstenite) for the gateway tests.

use super::TestApp;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any one expected frame may take.
const FRAME_TIMEOUT: Duration = Duration::from_secs(20);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn ws_url(app: &TestApp) -> String {
    format!("{}/ws", app.address.replacen("http://", "ws://", 1))
}

/// Connects, with `Authorization: Bearer <token>` when given.
pub async fn connect(app: &TestApp, token: Option<&str>) -> Ws {
    let mut request = ws_url(app).into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade succeeds")
        .0
}

pub async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// The next JSON frame; panics on a close or a timeout.
pub async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(FRAME_TIMEOUT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection is open")
            .expect("a valid frame");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame: {other:?}"),
        }
    }
}

/// Reads until the server closes; answers the close code and the text
/// frames seen before it.
pub async fn closed(ws: &mut Ws) -> (Option<u16>, Vec<Value>) {
    let mut seen = Vec::new();
    loop {
        let msg = tokio::time::timeout(FRAME_TIMEOUT, ws.next())
            .await
            .expect("the close in time");
        match msg {
            Some(Ok(Message::Text(t))) => seen.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return (frame.map(|f| u16::from(f.code)), seen);
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (None, seen),
        }
    }
}

pub async fn authed(app: &TestApp, token: &str) -> (Ws, Value) {
    let mut ws = connect(app, Some(token)).await;
    let ok = recv(&mut ws).await;
    assert_eq!(ok["type"], "auth_ok", "{ok}");
    (ws, ok)
}
