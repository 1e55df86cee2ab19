//! The periodic health check of the connection, and what Telegram errors
//! do to the account: a session-fatal one ends it, an account-wide flood
//! wait shows it `flood_limited`.

use super::AccountActor;
use crate::domain::{AccountState, RotationReason};
use crate::telegram::TgError;
use actix::prelude::*;
use std::time::Duration;

impl AccountActor {
    pub(super) fn health_check(&mut self, ctx: &mut Context<Self>) {
        let Ok(client) = self.connected_client() else {
            return;
        };
        let timeout = self.deps.request_timeout;
        let fut = async move {
            tokio::time::timeout(timeout, client.ping())
                .await
                .unwrap_or(Err(TgError::Timeout(timeout)))
        };
        ctx.spawn(
            actix::fut::wrap_future(fut).map(|res, act: &mut Self, ctx| match res {
                Ok(rtt) => {
                    act.deps
                        .metrics
                        .dc_latency
                        .with_label_values(&[&act.home_dc.to_string()])
                        .observe(rtt.as_secs_f64());
                }
                Err(e) => act.on_health_failure(e, ctx),
            }),
        );
    }

    pub(super) fn on_health_failure(&mut self, err: TgError, ctx: &mut Context<Self>) {
        tracing::warn!(
            account_id = self.id,
            error = err.code(),
            "health check failed"
        );
        if err.fatal_state().is_some() {
            self.note_error(&err, ctx);
            return;
        }
        let store = self.deps.store.clone();
        let id = self.id;
        let fut = async move {
            let info = store.active_info(id).await.ok().flatten()?;
            store.record_error(info.session_id).await.ok()
        };
        ctx.spawn(
            actix::fut::wrap_future(fut).map(|count, act: &mut Self, ctx| {
                let threshold = act.deps.session_error_threshold;
                if count.is_some_and(|c| c > i32::try_from(threshold).unwrap_or(i32::MAX)) {
                    act.publish(
                        "account.alert",
                        serde_json::json!({
                            "account_id": act.id,
                            "reason": "session_unhealthy",
                            "errors": count,
                        }),
                    );
                    act.rotate_in_background(RotationReason::Errors, ctx);
                }
            }),
        );
    }

    /// An account-wide FLOOD_WAIT longer than the short threshold puts the
    /// account in `flood_limited` until it passes (shorter ones are waited
    /// out without a state change).
    pub(super) fn note_error(&mut self, err: &TgError, ctx: &mut Context<Self>) {
        if let Some(terminal) = err.fatal_state() {
            self.finish(terminal, err.code(), ctx);
            return;
        }
        let TgError::FloodWait { seconds, scope } = err else {
            return;
        };
        if !matches!(scope, crate::telegram::FloodScope::Account) {
            return; // a per-chat wait does not stop the account
        }
        let wait = Duration::from_secs(u64::from(*seconds));
        self.flood_limited_for(wait, ctx);
    }

    /// Shows the account as `flood_limited` for `wait` when that is longer
    /// than the short threshold (shorter waits are waited out silently).
    pub(super) fn flood_limited_for(&mut self, wait: Duration, ctx: &mut Context<Self>) {
        if wait <= self.deps.limiter.short_wait_threshold() {
            return;
        }
        let seconds = wait.as_secs();
        let ends = tokio::time::Instant::now() + wait;
        if self.state == AccountState::FloodLimited && self.flood_until.is_some_and(|t| t >= ends) {
            return; // already limited at least that long
        }
        self.flood_until = Some(ends);
        self.flood_generation += 1;
        let generation = self.flood_generation;
        let until = chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        self.set_state(
            AccountState::FloodLimited,
            serde_json::json!({ "seconds": seconds, "until": until }),
        );
        ctx.run_later(wait, move |act, _| {
            if act.flood_generation == generation && act.state == AccountState::FloodLimited {
                act.set_state(AccountState::Connected, serde_json::json!({}));
            }
        });
    }
}
