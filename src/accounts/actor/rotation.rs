//! Session rotation: the periodic check of whether it is due (age, errors)
//! and the rotation itself, through the sink when connected.

use super::AccountActor;
use super::messages::CallError;
use super::sink::rotate_active;
use crate::domain::RotationReason;
use actix::prelude::*;

impl AccountActor {
    /// The periodic rotation check (`telegram.session_rotation_interval_ms`):
    /// due when older than the maximum age (`telegram.max_session_age_ms`) or
    /// after more errors than the threshold.
    pub(super) fn rotation_check(&mut self, ctx: &mut Context<Self>) {
        let store = self.deps.store.clone();
        let id = self.id;
        let max_age = self.deps.max_session_age;
        let threshold = i32::try_from(self.deps.session_error_threshold).unwrap_or(i32::MAX);
        let fut = async move {
            let info = store.active_info(id).await.ok().flatten()?;
            let age = chrono::Utc::now()
                .signed_duration_since(info.created_at)
                .to_std()
                .unwrap_or_default();
            if info.error_count > threshold {
                Some(RotationReason::Errors)
            } else if age >= max_age {
                Some(RotationReason::Age)
            } else {
                None
            }
        };
        ctx.spawn(
            actix::fut::wrap_future(fut).map(|due, act: &mut Self, ctx| {
                if let Some(reason) = due {
                    act.rotate_in_background(reason, ctx);
                }
            }),
        );
    }

    pub(super) fn rotate_in_background(&mut self, reason: RotationReason, ctx: &mut Context<Self>) {
        let fut = self.rotate(reason);
        ctx.spawn(fut.map(|_, _, _| ()));
    }

    pub(super) fn rotate(
        &mut self,
        reason: RotationReason,
    ) -> impl ActorFuture<Self, Output = Result<i64, CallError>> + use<> {
        let sink = self.sink.clone();
        let store = self.deps.store.clone();
        let id = self.id;
        let fut = async move {
            match sink {
                // Connected: through the sink, so no write races the rotation.
                Some(sink) => sink.rotate().await,
                None => rotate_active(&store, id).await,
            }
        };
        actix::fut::wrap_future(fut).map(move |res: Result<i64, CallError>, act: &mut Self, _| {
            match &res {
                Ok(session_id) => {
                    act.deps
                        .metrics
                        .rotations
                        .with_label_values(&[reason.as_str()])
                        .inc();
                    tracing::info!(
                        account_id = act.id,
                        session_id,
                        reason = reason.as_str(),
                        "session rotated"
                    );
                    act.publish(
                        "session.rotated",
                        serde_json::json!({
                            "account_id": act.id,
                            "session_id": session_id,
                            "reason": reason.as_str(),
                        }),
                    );
                }
                Err(e) => {
                    tracing::warn!(account_id = act.id, error = %e, "session rotation failed")
                }
            }
            res
        })
    }
}
