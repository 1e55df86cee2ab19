//! What a try's end means for the message, and how the drain records it:
//! a flood wait, a retry with backoff, a session-fatal stop or a failure,
//! each written with its `message.status` event.

use super::store::RowUpdate;
use super::{Drain, Flow, Run};
use crate::domain::Fault;
use crate::domain::MessageStatus;
use crate::entities::outbox;
use crate::events::WriterClosed;
use crate::ratelimit::Key;
use crate::supervisor::Backoff;
use crate::telegram::{FloodScope, Peer, TgError};
use chrono::Utc;
use std::time::Duration;
use tokio::time::Instant;

impl Drain {
    /// Decides what a failed try means for the message.
    /// `peer` is None when resolving the chat failed: a flood wait is then
    /// about resolving, a method of its own, and only this row waits.
    pub(super) async fn failed(
        &self,
        row: &outbox::Model,
        peer: Option<&Peer>,
        err: TgError,
        method: &str,
        run: &mut Run,
    ) -> Flow {
        let code = err.code();
        let attempts = row.attempts + 1;
        if let TgError::FloodWait { seconds, scope } = &err {
            let wait = Duration::from_secs(u64::from(*seconds));
            match (scope, peer) {
                (_, None) => {}
                (FloodScope::Account, Some(_)) => {
                    self.limiter
                        .block(&Key::account_messages(self.account_id), wait, method);
                    if wait > self.limiter.short_wait_threshold() {
                        self.observer.account_error(err.clone());
                    }
                }
                (FloodScope::Chat { .. }, Some(peer)) => {
                    self.limiter
                        .block(&Key::chat_messages(self.account_id, peer.id), wait, method);
                }
            }
            // The row itself waits too (the stored `next_attempt_at` is for
            // readers and for the next run after a restart).
            run.not_before
                .insert(row.id, Instant::now() + wait + self.limiter.margin());
            self.metrics
                .retries
                .with_label_values(&["flood_wait"])
                .inc();
            tracing::info!(
                account_id = self.account_id,
                message_id = row.id,
                seconds,
                method,
                "flood wait: the message stays queued"
            );
            let until = Utc::now() + chrono::Duration::seconds(i64::from(*seconds));
            let update = RowUpdate {
                attempts: Some(attempts),
                flood_waits: Some(row.flood_waits + 1),
                last_error: Some(Some("flood_wait".into())),
                next_attempt_at: Some(Some(until)),
                ..Default::default()
            };
            let event = self.event(
                row,
                MessageStatus::Queued,
                serde_json::json!({
                    "attempts": attempts,
                    "error": code,
                    "flood_wait": { "seconds": seconds, "until": until, "scope": scope },
                }),
            );
            return self
                .write(row.id, MessageStatus::Queued, update, event)
                .await;
        }
        if err.is_session_fatal() {
            // Not the message's fault: it waits for the account to come back.
            // No attempt is counted against the message.
            let update = RowUpdate {
                last_error: Some(Some(code.to_owned())),
                ..Default::default()
            };
            let event = self.event(
                row,
                MessageStatus::Queued,
                serde_json::json!({ "attempts": row.attempts, "error": code }),
            );
            let _ = self
                .write(row.id, MessageStatus::Queued, update, event)
                .await;
            self.observer.account_error(err);
            return Flow::Stop;
        }
        if matches!(err, TgError::PeerInvalid) {
            self.peers.invalidate(&row.chat);
        }
        let failures = attempts - row.flood_waits;
        let retry = err.is_transient()
            && u32::try_from(failures).unwrap_or(u32::MAX) < self.settings.max_attempts;
        if !retry {
            let telegram_error = match &err {
                TgError::Other { name, .. } | TgError::BadRequest(name) => Some(name.clone()),
                _ => None,
            };
            return self
                .fail(row, attempts, code, err.fault(), telegram_error)
                .await;
        }
        let backoff = Backoff {
            base: self.settings.retry_base_ms,
            factor: 2.0,
            cap: self.settings.retry_cap_ms.max(self.settings.retry_base_ms),
            jitter: 0.2,
        };
        let delay = backoff.delay(u32::try_from(failures - 1).unwrap_or(0), &mut run.rng);
        run.not_before.insert(row.id, Instant::now() + delay);
        self.metrics.retries.with_label_values(&[code]).inc();
        tracing::info!(
            account_id = self.account_id,
            message_id = row.id,
            error = code,
            attempts,
            retry_in_ms = delay.as_millis() as u64,
            "sending failed; will retry"
        );
        let update = RowUpdate {
            attempts: Some(attempts),
            last_error: Some(Some(code.to_owned())),
            next_attempt_at: Some(Some(
                Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
            )),
            ..Default::default()
        };
        let event = self.event(
            row,
            MessageStatus::Queued,
            serde_json::json!({
                "attempts": attempts,
                "error": code,
                "retry_in_ms": delay.as_millis() as u64,
            }),
        );
        self.write(row.id, MessageStatus::Queued, update, event)
            .await
    }

    /// Gives the message up; `fault` says whose doing the failure was.
    pub(super) async fn fail(
        &self,
        row: &outbox::Model,
        attempts: i32,
        code: &str,
        fault: Fault,
        telegram_error: Option<String>,
    ) -> Flow {
        tracing::warn!(
            account_id = self.account_id,
            message_id = row.id,
            error = code,
            attempts,
            "message failed"
        );
        let update = RowUpdate {
            attempts: Some(attempts),
            last_error: Some(Some(code.to_owned())),
            next_attempt_at: Some(None),
            ..Default::default()
        };
        let mut detail = serde_json::json!({ "attempts": attempts, "error": code });
        if let (Some(obj), Some(name)) = (detail.as_object_mut(), telegram_error) {
            obj.insert("telegram_error".into(), name.into());
        }
        let event = self.event(row, MessageStatus::Failed, detail);
        let flow = self
            .write(row.id, MessageStatus::Failed, update, event)
            .await;
        if flow == Flow::Continue {
            self.metrics.failed(code, fault);
            self.metrics.depth.dec();
        }
        flow
    }

    pub(super) async fn write(
        &self,
        id: i64,
        status: MessageStatus,
        update: RowUpdate,
        event: serde_json::Value,
    ) -> Flow {
        match self.store.transition(id, status, update, event).await {
            Ok(_) => Flow::Continue,
            // Shutting down: the row keeps its previous status and is tried
            // again after the restart (same random_id).
            Err(WriterClosed) => Flow::Stop,
        }
    }

    /// A `message.status` event's data.
    pub(super) fn event(
        &self,
        row: &outbox::Model,
        status: MessageStatus,
        detail: serde_json::Value,
    ) -> serde_json::Value {
        let mut data = serde_json::json!({
            "account_id": self.account_id,
            "message_id": row.id,
            "chat": row.chat,
            "status": status,
        });
        if let (Some(obj), serde_json::Value::Object(extra)) = (data.as_object_mut(), detail) {
            obj.extend(extra);
        }
        data
    }
}
