//! The JSON text frames of tgvisor's WebSocket protocol (`GET /ws`), as
//! the service's `docs/websocket-protocol.md` describes them: what the
//! client writes ([`Outgoing`]) and what it reads ([`Incoming`]), plus the
//! public payload types.

use crate::error::ServerError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An event delivered on a topic:
/// `{"type":"event","topic","offset","event","data"}`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Event {
    /// The topic, e.g. `account:7`.
    pub topic: String,
    /// Its position in the topic: strictly increasing per topic, not
    /// contiguous (ids from a sequence shared by all topics).
    pub offset: i64,
    /// What happened: `message.new`, `message.status`, `upload.progress`,
    /// `account.state`, …
    #[serde(rename = "event")]
    pub kind: String,
    /// The event's payload.
    pub data: serde_json::Value,
}

/// A text message to send through an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SendFrame {
    /// The account (tgvisor's id) to send from.
    pub account: i64,
    /// `me`, `@username` or a numeric chat id.
    pub chat: String,
    /// The text.
    pub text: String,
    /// Makes retries safe: the server queues one message per key, so a
    /// `send` that failed with [`Error::Disconnected`](crate::Error::Disconnected)
    /// can be repeated with the same key.
    pub idempotency_key: String,
}

/// The server accepted a message: `{"type":"ack","id","message_id","status"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// tgvisor's id of the message.
    pub message_id: i64,
    /// `queued` for a new message; a replayed key shows where the original is.
    pub status: String,
}

/// The server's answer to a subscribe: `{"type":"subscribed","id","topic","offset","recovered"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The topic.
    pub topic: String,
    /// The topic's latest offset when the subscription began (`None` if the
    /// topic has no events yet).
    pub offset: Option<i64>,
    /// Whether every event after the requested offset could be replayed.
    /// `false` means a gap: an [`Item::Resync`](crate::Item::Resync) follows.
    pub recovered: bool,
}

/// A frame the client writes.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Outgoing<'a> {
    Subscribe {
        id: u64,
        topic: &'a str,
        since: Option<i64>,
    },
    Unsubscribe {
        id: u64,
        topic: &'a str,
    },
    Send {
        id: u64,
        #[serde(flatten)]
        message: &'a SendFrame,
    },
    Ping {
        id: u64,
    },
}

impl Outgoing<'_> {
    pub(crate) fn to_json(&self) -> String {
        // unwrap: these types hold only strings and integers, which always serialise.
        serde_json::to_string(self).unwrap()
    }
}

/// A frame the server writes.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Incoming {
    AuthOk {
        #[serde(default)]
        connection_id: serde_json::Value,
    },
    Subscribed {
        id: serde_json::Value,
        topic: String,
        offset: Option<i64>,
        #[serde(default = "yes")]
        recovered: bool,
    },
    Unsubscribed {
        id: serde_json::Value,
    },
    Ack {
        id: serde_json::Value,
        message_id: i64,
        status: String,
    },
    Pong {
        id: serde_json::Value,
    },
    Event(Event),
    Error {
        #[serde(default)]
        id: serde_json::Value,
        code: String,
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// A frame type this client does not know (a newer server): ignored.
    #[serde(other)]
    Unknown,
}

fn yes() -> bool {
    true
}

/// A request id echoed back: the number the client sent, or the same number
/// as a string.
pub(crate) fn request_id(id: &serde_json::Value) -> Option<u64> {
    match id {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The public form of an error frame.
pub(crate) fn server_error(
    code: String,
    message: String,
    retry_after_ms: Option<u64>,
) -> ServerError {
    ServerError {
        code,
        message,
        retry_after: retry_after_ms.map(Duration::from_millis),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_subscribe_from_nothing_sends_since_null() {
        let frame = Outgoing::Subscribe {
            id: 3,
            topic: "account:7",
            since: None,
        }
        .to_json();
        let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(
            value,
            json!({"type":"subscribe","id":3,"topic":"account:7","since":null})
        );
    }

    #[test]
    fn a_send_frame_carries_the_message_fields_flat() {
        let message = SendFrame {
            account: 7,
            chat: "@bob".into(),
            text: "hi".into(),
            idempotency_key: "k1".into(),
        };
        let frame = Outgoing::Send {
            id: 4,
            message: &message,
        }
        .to_json();
        let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(
            value,
            json!({"type":"send","id":4,"account":7,"chat":"@bob","text":"hi","idempotency_key":"k1"})
        );
    }

    #[test]
    fn events_errors_and_unknown_frames_parse() {
        let event: Incoming = serde_json::from_value(json!({
            "type":"event","topic":"account:7","offset":12,"event":"message.new","data":{"x":1}
        }))
        .unwrap();
        assert!(
            matches!(event, Incoming::Event(Event { offset: 12, ref kind, .. }) if kind == "message.new")
        );

        let error: Incoming = serde_json::from_value(json!({
            "type":"error","code":"rate_limited","message":"slow down","retry_after_ms":1500
        }))
        .unwrap();
        assert!(
            matches!(error, Incoming::Error { ref id, retry_after_ms: Some(1500), .. } if id.is_null())
        );

        let unknown: Incoming = serde_json::from_value(json!({"type":"hello","x":1})).unwrap();
        assert!(matches!(unknown, Incoming::Unknown));
    }

    #[test]
    fn request_ids_are_read_as_numbers_or_numeric_strings() {
        assert_eq!(request_id(&json!(5)), Some(5));
        assert_eq!(request_id(&json!("5")), Some(5));
        assert_eq!(request_id(&json!(null)), None);
        assert_eq!(request_id(&json!(-1)), None);
    }
}
