//! The frames of the WebSocket protocol (docs/websocket-protocol.md):
//! JSON text frames, one object each, told apart by `type`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A frame from the client. `id` is the client's request id (any JSON
/// scalar), echoed on the answer.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Auth {
        token: String,
    },
    Subscribe {
        #[serde(default, deserialize_with = "request_id")]
        id: Value,
        topic: String,
        #[serde(default)]
        since: Option<i64>,
    },
    Unsubscribe {
        #[serde(default, deserialize_with = "request_id")]
        id: Value,
        topic: String,
    },
    Send {
        #[serde(default, deserialize_with = "request_id")]
        id: Value,
        account: i64,
        chat: String,
        text: String,
        #[serde(default)]
        idempotency_key: Option<String>,
        #[serde(default)]
        reply_to: Option<i32>,
        #[serde(default)]
        silent: bool,
    },
    Ping {
        #[serde(default, deserialize_with = "request_id")]
        id: Value,
    },
}

/// The largest integer a request id may be: every JSON number up to it is
/// exact in a double, so a JavaScript client reads back the id it sent.
pub const MAX_SAFE_ID: u64 = (1 << 53) - 1;

/// Longest string request id, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Whether `id` may be a request id: absent (null), a boolean, a string of
/// at most [`MAX_ID_LEN`] bytes, or an integer within ±[`MAX_SAFE_ID`].
/// Larger numbers and fractions would not come back as the client wrote
/// them (serde_json reads an integer beyond 64 bits as a double).
pub fn valid_request_id(id: &Value) -> bool {
    match id {
        Value::Null | Value::Bool(_) => true,
        Value::String(s) => s.len() <= MAX_ID_LEN,
        Value::Number(n) => {
            n.as_u64().is_some_and(|v| v <= MAX_SAFE_ID)
                || n.as_i64().is_some_and(|v| v.unsigned_abs() <= MAX_SAFE_ID)
        }
        Value::Array(_) | Value::Object(_) => false,
    }
}

fn request_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    let id = Value::deserialize(d)?;
    if valid_request_id(&id) {
        Ok(id)
    } else {
        Err(serde::de::Error::custom(format!(
            "id must be a string of at most {MAX_ID_LEN} bytes or an integer within ±{MAX_SAFE_ID}"
        )))
    }
}

/// A frame to the client (events are serialized once by the hub instead,
/// see [`event_frame`]).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    AuthOk {
        user_id: i64,
        connection_id: u64,
    },
    Subscribed {
        id: &'a Value,
        topic: &'a str,
        offset: i64,
        recovered: bool,
    },
    Unsubscribed {
        id: &'a Value,
        topic: &'a str,
    },
    Ack {
        id: &'a Value,
        message_id: i64,
        status: crate::domain::MessageStatus,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        replayed: bool,
    },
    Pong {
        id: &'a Value,
    },
    Error {
        #[serde(skip_serializing_if = "Value::is_null")]
        id: &'a Value,
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<&'a str>,
    },
}

impl ServerFrame<'_> {
    pub fn to_text(&self) -> String {
        // A ServerFrame holds only strings, numbers and JSON values: it
        // always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"internal error"}"#.to_owned()
        })
    }
}

/// `{"type":"event","topic","offset","event","data"}` for a stored event.
pub fn event_frame(e: &crate::events::StoredEvent) -> String {
    #[derive(Serialize)]
    struct EventFrame<'a> {
        r#type: &'static str,
        topic: &'a str,
        offset: i64,
        event: &'a str,
        data: &'a Value,
    }
    serde_json::to_string(&EventFrame {
        r#type: "event",
        topic: &e.topic,
        offset: e.offset,
        event: &e.kind,
        data: &e.data,
    })
    .unwrap_or_else(|_| {
        format!(
            r#"{{"type":"event","topic":{},"offset":{},"event":"invalid","data":null}}"#,
            Value::from(e.topic.as_str()),
            e.offset
        )
    })
}

/// The account of an `account:<id>` topic.
pub fn account_of(topic: &str) -> Option<i64> {
    let id = topic.strip_prefix("account:")?;
    // Canonical decimal only: `account:007` is not a topic.
    let n: i64 = id.parse().ok()?;
    (n > 0 && n.to_string() == id).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_strictly() {
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"subscribe","id":1,"topic":"account:5","since":42}"#)
                .unwrap();
        assert!(matches!(
            f,
            ClientFrame::Subscribe { ref topic, since: Some(42), .. } if topic == "account:5"
        ));
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"subscribe","topic":"account:5","since":null}"#)
                .unwrap();
        assert!(matches!(f, ClientFrame::Subscribe { since: None, .. }));
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"nope"}"#).is_err());
        assert!(
            serde_json::from_str::<ClientFrame>(r#"{"type":"ping","id":1,"extra":true}"#).is_err(),
            "unknown fields are refused"
        );
        for bad in [
            "9007199254740992",
            "-9007199254740992",
            "18446744073709551616",
            "1.5",
            "[1]",
            "{}",
        ] {
            let frame = format!(r#"{{"type":"ping","id":{bad}}}"#);
            assert!(
                serde_json::from_str::<ClientFrame>(&frame).is_err(),
                "{bad}"
            );
        }
        for good in [
            "9007199254740991",
            "-9007199254740991",
            "\"r-1\"",
            "null",
            "true",
        ] {
            let frame = format!(r#"{{"type":"ping","id":{good}}}"#);
            assert!(
                serde_json::from_str::<ClientFrame>(&frame).is_ok(),
                "{good}"
            );
        }
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"auth"}"#).is_err());
    }

    #[test]
    fn topics_are_canonical_account_ids() {
        assert_eq!(account_of("account:5"), Some(5));
        assert_eq!(account_of("account:007"), None);
        assert_eq!(account_of("account:-1"), None);
        assert_eq!(account_of("account:0"), None);
        assert_eq!(account_of("user:5"), None);
        assert_eq!(account_of("account:"), None);
    }

    #[test]
    fn server_frames_have_the_protocol_shape() {
        let id = Value::from("r1");
        let v: Value = serde_json::from_str(
            &ServerFrame::Subscribed {
                id: &id,
                topic: "account:1",
                offset: 9,
                recovered: true,
            }
            .to_text(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"subscribed","id":"r1","topic":"account:1","offset":9,"recovered":true})
        );
        let v: Value = serde_json::from_str(
            &ServerFrame::Error {
                id: &Value::Null,
                code: "unauthorized",
                message: "no",
                retry_after_ms: None,
                field: None,
            }
            .to_text(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"error","code":"unauthorized","message":"no"})
        );
    }
}
