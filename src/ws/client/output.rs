//! What a connection's actor sends: replies and error frames, and how it
//! closes (after what is queued, or past a queue the client does not
//! read).

use super::WsClient;
use crate::domain::Fault;
use crate::domain::validation::ValidationError;
use crate::metrics::ws::FrameKind;
use crate::ws::close_code;
use crate::ws::frames::ServerFrame;
use crate::ws::outlet::{Out, PushError};
use actix::prelude::*;
use actix_ws::{CloseCode, CloseReason};
use serde_json::Value;
use std::time::Duration;

/// How long a close frame may take to go out past a stuck queue.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

impl WsClient {
    pub(super) fn text(
        &mut self,
        ctx: &mut Context<Self>,
        frame: &ServerFrame<'_>,
        kind: FrameKind,
    ) {
        self.push(ctx, Out::Text(frame.to_text().into(), None, kind));
    }

    pub(super) fn error(
        &mut self,
        ctx: &mut Context<Self>,
        id: &Value,
        code: &str,
        message: &str,
        retry_after: Option<Duration>,
    ) {
        let fault = crate::metrics::ws::error_fault(code);
        self.error_by(ctx, id, code, message, retry_after, fault);
    }

    /// An error frame whose fault its sender knows.
    pub(super) fn error_by(
        &mut self,
        ctx: &mut Context<Self>,
        id: &Value,
        code: &str,
        message: &str,
        retry_after: Option<Duration>,
        fault: Fault,
    ) {
        self.cx.hub.metrics().error(code, fault);
        let frame = ServerFrame::Error {
            id,
            code,
            message,
            retry_after_ms: retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            field: None,
        };
        self.text(ctx, &frame, FrameKind::Error);
    }

    pub(super) fn invalid(&mut self, ctx: &mut Context<Self>, id: &Value, e: &ValidationError) {
        self.cx.hub.metrics().error("invalid_input", Fault::Client);
        let message = e.to_string();
        let frame = ServerFrame::Error {
            id,
            code: "invalid_input",
            message: &message,
            retry_after_ms: None,
            field: Some(e.field),
        };
        self.text(ctx, &frame, FrameKind::Error);
    }

    /// Queues a frame; a full queue means a slow consumer.
    pub(super) fn push(&mut self, ctx: &mut Context<Self>, out: Out) {
        if self.closing.is_some() {
            return;
        }
        match self.outlet.push(out) {
            Ok(_) => {}
            Err(PushError::Full) => self.slow_consumer(ctx),
            Err(PushError::Closed) => {
                self.closing = Some("client");
                ctx.stop();
            }
        }
    }

    /// Closes with `code` after the frames already queued.
    pub(super) fn close(
        &mut self,
        ctx: &mut Context<Self>,
        code: u16,
        reason: &'static str,
        message: &str,
    ) {
        if self.closing.is_some() {
            return;
        }
        let close = CloseReason {
            code: CloseCode::from(code),
            description: Some(message.to_owned()),
        };
        if self.outlet.push(Out::Close(Some(close.clone()))) == Err(PushError::Full) {
            self.abort_writer(close);
        }
        self.closing = Some(reason);
        ctx.stop();
    }

    /// The client does not read fast enough: what is queued for it is
    /// dropped and it is closed with 4010.
    pub(super) fn slow_consumer(&mut self, ctx: &mut Context<Self>) {
        if self.closing.is_some() {
            return;
        }
        self.abort_writer(CloseReason {
            code: CloseCode::from(close_code::SLOW_CONSUMER),
            description: Some("slow consumer: frames were not read in time".to_owned()),
        });
        self.closing = Some("slow_consumer");
        ctx.stop();
    }

    /// Stops the writer and sends the close frame past its queue (bounded
    /// in time: a client that reads nothing is simply dropped).
    fn abort_writer(&mut self, close: CloseReason) {
        if let Some(w) = self.writer.take() {
            w.abort();
        }
        let session = self.outlet.abort();
        actix_rt::spawn(async move {
            let _ = tokio::time::timeout(CLOSE_GRACE, session.close(Some(close))).await;
        });
    }
}
