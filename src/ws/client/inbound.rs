//! What a connection's actor does with each frame the client sends:
//! the rate limit on frames, parsing, and one handler per frame type
//! (`auth`, `ping`, `subscribe`, `unsubscribe`, `send`).

use super::WsClient;
use crate::auth::Principal;
use crate::domain::validation::ValidationError;
use crate::metrics::ws::FrameKind;
use crate::outbox::{EnqueueError, NewMessage};
use crate::ratelimit::Key;
use crate::ws::close_code;
use crate::ws::frames::{ClientFrame, ServerFrame};
use crate::ws::outlet::Out;
use actix::prelude::*;
use actix_ws::{CloseCode, CloseReason, Message, ProtocolError};
use serde_json::Value;
use tokio::time::Instant;

impl StreamHandler<Result<Message, ProtocolError>> for WsClient {
    fn handle(&mut self, msg: Result<Message, ProtocolError>, ctx: &mut Context<Self>) {
        if self.closing.is_some() {
            return;
        }
        self.last_heard = Instant::now();
        self.ping_outstanding = false;
        match msg {
            Ok(Message::Text(text)) => {
                self.cx.hub.metrics().messages_in.inc();
                self.on_text(ctx, &text);
            }
            Ok(Message::Binary(_) | Message::Continuation(_)) => {
                self.cx.hub.metrics().messages_in.inc();
                if self.cx.limiter.check(&Key::ws_messages(self.id)).is_err() {
                    self.close(
                        ctx,
                        close_code::POLICY,
                        "rate_limited",
                        "rate limit exceeded",
                    );
                    return;
                }
                self.error(
                    ctx,
                    &Value::Null,
                    "invalid_frame",
                    "JSON text frames only",
                    None,
                );
                if self.principal.is_none() {
                    self.close_unauthenticated(ctx);
                }
            }
            Ok(Message::Ping(bytes)) => self.push(ctx, Out::Pong(bytes)),
            Ok(Message::Pong(_) | Message::Nop) => {}
            Ok(Message::Close(reason)) => {
                let _ = self
                    .outlet
                    .push(Out::Close(Some(reason.unwrap_or(CloseReason {
                        code: CloseCode::Normal,
                        description: None,
                    }))));
                self.closing = Some("client");
                ctx.stop();
            }
            Err(ProtocolError::Overflow) => {
                let max = self.cx.settings.rate_limits.websocket.messages.max_size;
                let message = format!("frames are limited to {max} bytes");
                self.error(ctx, &Value::Null, "frame_too_large", &message, None);
                self.close(
                    ctx,
                    close_code::POLICY,
                    "frame_too_large",
                    "frame too large",
                );
            }
            Err(e) => {
                tracing::debug!(error = %e, connection_id = self.id, "ws protocol error");
                self.close(ctx, 1002, "protocol_error", "protocol error");
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.closing.get_or_insert("client");
        ctx.stop();
    }
}

impl WsClient {
    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        if let Err(t) = self.cx.limiter.check(&Key::ws_messages(self.id)) {
            let limit = &self.cx.settings.rate_limits.websocket.messages;
            let message = format!(
                "more than {} frames in {} s",
                limit.max,
                limit.window_ms.as_secs()
            );
            self.error(
                ctx,
                &Value::Null,
                "rate_limited",
                &message,
                Some(t.retry_after),
            );
            self.close(
                ctx,
                close_code::POLICY,
                "rate_limited",
                "rate limit exceeded",
            );
            return;
        }
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(f) => f,
            Err(e) => {
                // The id, when the frame has one, so the client can match it.
                let id = serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|v| v.get("id").cloned())
                    // An id that could not come back as it was sent is not echoed.
                    .filter(crate::ws::frames::valid_request_id)
                    .unwrap_or(Value::Null);
                let message = format!("invalid frame: {}", strip_position(&e.to_string()));
                self.error(ctx, &id, "invalid_frame", &message, None);
                if self.principal.is_none() {
                    self.close_unauthenticated(ctx);
                }
                return;
            }
        };
        let Some(principal) = self.principal.clone() else {
            match frame {
                ClientFrame::Auth { token } => self.auth_frame(ctx, token),
                _ => {
                    self.error(
                        ctx,
                        &Value::Null,
                        "unauthorized",
                        "authenticate first: an auth frame or an Authorization header",
                        None,
                    );
                    self.close_unauthenticated(ctx);
                }
            }
            return;
        };
        match frame {
            ClientFrame::Auth { .. } => {
                self.error(
                    ctx,
                    &Value::Null,
                    "already_authenticated",
                    "already authenticated",
                    None,
                );
            }
            ClientFrame::Ping { id } => {
                self.text(ctx, &ServerFrame::Pong { id: &id }, FrameKind::Reply)
            }
            ClientFrame::Subscribe { id, topic, since } => {
                self.subscribe(ctx, &principal, id, topic, since);
            }
            ClientFrame::Unsubscribe { id, topic } => {
                if self.end_subscription(ctx, &topic) {
                    self.text(
                        ctx,
                        &ServerFrame::Unsubscribed {
                            id: &id,
                            topic: &topic,
                        },
                        FrameKind::Reply,
                    );
                } else {
                    self.error(
                        ctx,
                        &id,
                        "not_subscribed",
                        "not subscribed to this topic",
                        None,
                    );
                }
            }
            ClientFrame::Send {
                id,
                account,
                chat,
                text,
                idempotency_key,
                reply_to,
                silent,
            } => {
                let request = SendRequest {
                    account,
                    chat,
                    text,
                    idempotency_key,
                    reply_to,
                    silent,
                };
                self.send(ctx, &principal, id, request);
            }
        }
    }

    fn send(&mut self, ctx: &mut Context<Self>, principal: &Principal, id: Value, r: SendRequest) {
        let msg = match r.validate(principal.user_id) {
            Ok(m) => m,
            Err(e) => {
                self.invalid(ctx, &id, &e);
                return;
            }
        };
        // The same per-user limit as POST /messages.
        if let Err(t) = self.cx.limiter.check(&Key::api(principal.user_id)) {
            self.error(
                ctx,
                &id,
                "rate_limited",
                "too many requests; retry after the time given",
                Some(t.retry_after),
            );
            return;
        }
        let outbox = self.cx.outbox.clone();
        ctx.spawn(
            async move { outbox.enqueue(msg).await }
                .into_actor(self)
                .map(move |res, act, ctx| match res {
                    Ok(a) => {
                        let frame = ServerFrame::Ack {
                            id: &id,
                            message_id: a.message_id,
                            status: a.status,
                            replayed: a.replayed,
                        };
                        act.text(ctx, &frame, FrameKind::Reply);
                    }
                    Err(e) => {
                        let message = match &e {
                            EnqueueError::Internal(err) => {
                                tracing::error!(error = %err, "ws send: the outbox failed");
                                "internal error".to_owned()
                            }
                            other => other.to_string(),
                        };
                        let (code, retry) = (e.code(), e.retry_after());
                        act.error(ctx, &id, code, &message, retry);
                    }
                }),
        );
    }
}

/// A `send` frame's fields.
struct SendRequest {
    account: i64,
    chat: String,
    text: String,
    idempotency_key: Option<String>,
    reply_to: Option<i32>,
    silent: bool,
}

impl SendRequest {
    /// The same checks as `POST /accounts/{id}/messages`.
    fn validate(self, user_id: i64) -> Result<NewMessage, ValidationError> {
        NewMessage::validated(
            self.account,
            user_id,
            &self.chat,
            self.text,
            self.reply_to,
            self.silent,
            self.idempotency_key.as_deref(),
        )
    }
}

/// serde's "at line 1 column 17" says nothing to a client of a one-line frame.
fn strip_position(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}
