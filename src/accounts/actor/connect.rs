//! Connecting: a client slot from the pool, the stored session, the
//! backend's connection; retries with backoff on transient failures, and
//! the end of the actor on a connection lost or a session-fatal answer.

use super::AccountActor;
use super::messages::CallError;
use super::sink::StoreSink;
use crate::domain::AccountState;
use crate::sessions::SessionData;
use crate::supervisor::Backoff;
use crate::telegram::TgError;
use crate::telegram::metrics::Instrumented;
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// Delays between connect attempts inside the actor.
fn connect_backoff() -> Backoff {
    Backoff {
        base: Duration::from_secs(1),
        factor: 2.0,
        cap: Duration::from_secs(60),
        jitter: 0.2,
    }
}

impl AccountActor {
    pub(super) fn begin_connect(&mut self, ctx: &mut Context<Self>) {
        if self.permit.is_none() {
            match self.deps.pool.try_acquire(self.owner) {
                Ok(permit) => self.permit = Some(permit),
                Err(full) => {
                    self.set_state(
                        AccountState::Waiting,
                        serde_json::json!({ "reason": full.reason() }),
                    );
                    let (pool, owner) = (self.deps.pool.clone(), self.owner);
                    ctx.spawn(
                        actix::fut::wrap_future(async move { pool.acquire(owner).await }).map(
                            |permit, act: &mut Self, ctx| match permit {
                                Ok(p) => {
                                    act.permit = Some(p);
                                    act.begin_connect(ctx);
                                }
                                Err(_) => ctx.stop(), // the pool was closed: shutting down
                            },
                        ),
                    );
                    return;
                }
            }
        }
        if self.state != AccountState::Connecting || self.connect_attempt == 0 {
            self.set_state(AccountState::Connecting, serde_json::json!({}));
        }
        let deps = self.deps.clone();
        let id = self.id;
        let fut = async move {
            let loaded = deps
                .store
                .load_active(id)
                .await
                .map_err(|e| CallError::Internal(e.into()))?
                .ok_or(CallError::Telegram(TgError::Unauthorized))?;
            let data = SessionData::from_bytes(&loaded.plaintext)
                .map_err(|e| CallError::Internal(e.into()))?;
            // Catch up from what the account's events were committed with.
            let resume = crate::accounts::update_state::load(&deps.db, id)
                .await
                .map_err(|e| CallError::Internal(e.into()))?;
            let home_dc = data.home_dc;
            let sink = Arc::new(StoreSink::new(
                deps.store.clone(),
                id,
                loaded.session_id,
                home_dc,
                deps.metrics.clone(),
            ));
            let conn = tokio::time::timeout(
                deps.request_timeout,
                deps.backend.connect(data, resume, sink.clone()),
            )
            .await
            .map_err(|_| TgError::Timeout(deps.request_timeout))??;
            let client = Instrumented::wrap(conn.client.clone(), deps.metrics.clone());
            let me = tokio::time::timeout(deps.request_timeout, client.get_me())
                .await
                .map_err(|_| TgError::Timeout(deps.request_timeout))??;
            Ok::<_, CallError>((conn, client, sink, me, home_dc))
        };
        ctx.spawn(
            actix::fut::wrap_future(fut).map(|res, act: &mut Self, ctx| match res {
                Ok((conn, client, sink, me, home_dc)) => {
                    act.on_connected(conn, client, sink, me, home_dc, ctx)
                }
                Err(e) => act.on_connect_failed(e, ctx),
            }),
        );
    }

    pub(super) fn on_connect_failed(&mut self, err: CallError, ctx: &mut Context<Self>) {
        if let CallError::Telegram(e) = &err
            && let Some(terminal) = e.fatal_state()
        {
            self.finish(terminal, e.code(), ctx);
            return;
        }
        let mut delay = connect_backoff().delay(self.connect_attempt, &mut self.rng);
        if let CallError::Telegram(TgError::FloodWait { seconds, .. }) = &err {
            delay = delay.max(Duration::from_secs(u64::from(*seconds)));
        }
        self.connect_attempt += 1;
        let code = match &err {
            CallError::Telegram(e) => e.code(),
            CallError::NotConnected(_) => "not_connected",
            CallError::Internal(e) => {
                tracing::error!(account_id = self.id, error = %e, "connecting failed");
                "internal"
            }
        };
        tracing::warn!(
            account_id = self.id,
            attempt = self.connect_attempt,
            error = code,
            retry_in_ms = delay.as_millis() as u64,
            "connecting to Telegram failed; will retry"
        );
        self.set_state(
            AccountState::Connecting,
            serde_json::json!({
                "error": code,
                "attempt": self.connect_attempt,
                "retry_in_ms": delay.as_millis() as u64,
            }),
        );
        ctx.run_later(delay, |act, ctx| act.begin_connect(ctx));
    }

    pub(super) fn on_connection_lost(&mut self, err: TgError, ctx: &mut Context<Self>) {
        self.client = None;
        if let Some(terminal) = err.fatal_state() {
            self.finish(terminal, err.code(), ctx);
            return;
        }
        // A dead runner or link: an abnormal exit, so the supervisor rebuilds
        // the client from the stored session after its backoff.
        self.set_state(
            AccountState::Connecting,
            serde_json::json!({ "error": err.code(), "reason": "connection lost" }),
        );
        self.exit
            .fail(format!("telegram connection lost: {}", err.code()));
        ctx.stop();
    }

    /// Ends the actor in a state only the owner can leave.
    pub(super) fn finish(&mut self, state: AccountState, reason: &str, ctx: &mut Context<Self>) {
        tracing::warn!(account_id = self.id, state = %state, reason, "account needs its owner");
        self.set_state(state, serde_json::json!({ "reason": reason }));
        self.publish(
            "account.alert",
            serde_json::json!({ "account_id": self.id, "state": state, "reason": reason }),
        );
        self.permit = None;
        let _ = self.deps.released.send(self.id);
        ctx.stop();
    }
}
