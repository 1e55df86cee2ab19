//! A scripted fake tgvisor WebSocket server on 127.0.0.1:0. It records every
//! upgrade attempt (when, which `Authorization` header, which URI), refuses
//! the ones the test asks it to, and hands each accepted connection to the
//! test, which then plays the server's side frame by frame.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// One upgrade attempt the server saw.
pub struct Attempt {
    /// When the TCP connection was accepted.
    pub at: Instant,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The request URI (path and query).
    pub uri: String,
    /// The connection, or `None` if the upgrade was refused.
    pub conn: Option<Conn>,
}

/// The fake server.
pub struct FakeServer {
    addr: SocketAddr,
    attempts: mpsc::UnboundedReceiver<Attempt>,
    /// HTTP statuses to refuse the next upgrades with, in order.
    refusals: Arc<Mutex<VecDeque<u16>>>,
    /// Once the queue is empty: refuse every upgrade with this status.
    refuse_all: Arc<Mutex<Option<u16>>>,
}

impl FakeServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, attempts) = mpsc::unbounded_channel();
        let refusals = Arc::new(Mutex::new(VecDeque::new()));
        let refuse_all = Arc::new(Mutex::new(None));
        let (queue, all) = (Arc::clone(&refusals), Arc::clone(&refuse_all));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let at = Instant::now();
                tcp.set_nodelay(true).unwrap();
                let refusal = queue.lock().unwrap().pop_front().or(*all.lock().unwrap());
                let attempt = handshake(tcp, at, refusal).await;
                if tx.send(attempt).is_err() {
                    return;
                }
            }
        });
        Self {
            addr,
            attempts,
            refusals,
            refuse_all,
        }
    }

    /// The endpoint, as a client would be configured with it.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Refuses the next upgrades with these HTTP statuses.
    pub fn refuse(&self, statuses: impl IntoIterator<Item = u16>) {
        self.refusals.lock().unwrap().extend(statuses);
    }

    /// Refuses every upgrade from now on.
    pub fn refuse_all(&self, status: u16) {
        *self.refuse_all.lock().unwrap() = Some(status);
    }

    /// The next upgrade attempt.
    pub async fn attempt(&mut self) -> Attempt {
        self.attempts
            .recv()
            .await
            .expect("the server's accept loop ended")
    }

    /// The next upgrade attempt, which must have been accepted.
    pub async fn accept(&mut self) -> (Instant, Conn) {
        let attempt = self.attempt().await;
        (
            attempt.at,
            attempt
                .conn
                .expect("this upgrade should have been accepted"),
        )
    }

    /// Upgrade attempts seen but not yet taken by the test.
    pub fn untaken_attempts(&mut self) -> usize {
        let mut n = 0;
        while self.attempts.try_recv().is_ok() {
            n += 1;
        }
        n
    }
}

// The callback's error type is tungstenite's `ErrorResponse`, large by design.
#[allow(clippy::result_large_err)]
async fn handshake(tcp: TcpStream, at: Instant, refusal: Option<u16>) -> Attempt {
    let mut authorization = None;
    let mut uri = String::new();
    let callback = |request: &Request, response: Response| {
        authorization = request
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        uri = request.uri().to_string();
        match refusal {
            Some(status) => {
                let mut refused = ErrorResponse::new(Some("refused".to_owned()));
                *refused.status_mut() = StatusCode::from_u16(status).unwrap();
                Err(refused)
            }
            None => Ok(response),
        }
    };
    let conn = tokio_tungstenite::accept_hdr_async(tcp, callback)
        .await
        .ok()
        .map(|ws| Conn { ws });
    Attempt {
        at,
        authorization,
        uri,
        conn,
    }
}

/// The server's side of one connection.
pub struct Conn {
    ws: WebSocketStream<TcpStream>,
}

impl Conn {
    /// The next text frame the client sent, as JSON.
    pub async fn recv(&mut self) -> Value {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
                Some(Ok(Message::Pong(_) | Message::Ping(_))) => continue,
                other => panic!("expected a text frame from the client, got {other:?}"),
            }
        }
    }

    /// Sends a JSON text frame.
    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    /// Receives a request and answers it with `answer(request)`; returns the
    /// request.
    pub async fn answer(&mut self, answer: impl FnOnce(&Value) -> Value) -> Value {
        let request = self.recv().await;
        self.send(answer(&request)).await;
        request
    }

    /// Sends an event.
    pub async fn event(&mut self, topic: &str, offset: i64) {
        let frame = serde_json::json!({
            "type": "event", "topic": topic, "offset": offset,
            "event": "message.new", "data": {"n": offset}
        });
        self.send(frame).await;
    }

    /// Reads until the client's close frame; returns its code.
    pub async fn closed_by_client(&mut self) -> u16 {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map_or(1005, |f| f.code.into()),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame from the client, got {other:?}"),
            }
        }
    }

    /// Closes with a close code.
    pub async fn close(mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code: code.into(),
            reason: reason.into(),
        };
        self.ws.close(Some(frame)).await.unwrap();
        // Wait for the client's answering close, then the end of the stream.
        while let Some(Ok(_)) = self.ws.next().await {}
    }
}
