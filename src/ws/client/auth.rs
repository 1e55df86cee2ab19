//! How a connection authenticates: a header token or an `auth` frame,
//! the per-user and per-address connection limits, the token's expiry,
//! and the heartbeat's recheck that ends a connection whose token was
//! revoked.

use super::WsClient;
use crate::auth::{AuthError, Principal};
use crate::domain::Fault;
use crate::metrics::ws::FrameKind;
use crate::ws::close_code;
use crate::ws::frames::ServerFrame;
use actix::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::Duration;

impl WsClient {
    pub(super) fn authenticated(&mut self, ctx: &mut Context<Self>, principal: Principal) {
        if let Some(ip) = self.unauthenticated_ip.take() {
            self.cx.hub.release_unauthenticated(ip);
        }
        if self.cx.hub.admit_user(principal.user_id).is_err() {
            let limit = self.cx.settings.rate_limits.websocket.connections.per_user;
            self.too_many(
                ctx,
                &format!("too many connections for this user (at most {limit})"),
                Fault::Client,
            );
            return;
        }
        // The token's expiry ends the connection.
        let now = chrono::Utc::now().timestamp();
        let left = Duration::from_secs(u64::try_from(principal.expires_at - now).unwrap_or(0));
        ctx.run_later(left, |act, ctx| {
            act.error(
                ctx,
                &Value::Null,
                "token_expired",
                "the token expired",
                None,
            );
            act.close(
                ctx,
                close_code::UNAUTHORIZED,
                "unauthorized",
                "token expired",
            );
        });
        let frame = ServerFrame::AuthOk {
            user_id: principal.user_id,
            connection_id: self.id,
        };
        self.principal = Some(principal);
        self.text(ctx, &frame, FrameKind::Reply);
    }

    /// An error frame saying which connection limit, then 4009. `fault`:
    /// a client's own limit, or the service's (`at_capacity`).
    pub(super) fn too_many(&mut self, ctx: &mut Context<Self>, message: &str, fault: Fault) {
        let code = "too_many_connections";
        self.error_by(ctx, &Value::Null, code, message, None, fault);
        let reason = if fault == Fault::Server {
            "at_capacity"
        } else {
            code
        };
        self.close(
            ctx,
            close_code::TOO_MANY_CONNECTIONS,
            reason,
            "too many connections",
        );
    }

    /// A frame other than `auth` before authentication: close 4001.
    pub(super) fn close_unauthenticated(&mut self, ctx: &mut Context<Self>) {
        self.close(
            ctx,
            close_code::UNAUTHORIZED,
            "unauthorized",
            "authenticate first",
        );
    }

    pub(super) fn unauthorized(&mut self, ctx: &mut Context<Self>, e: &AuthError) {
        // The token could not be checked (the database failed): the
        // service's fault, whatever the frame says.
        let (message, fault, reason) = match e {
            AuthError::Internal(_) => (
                "authentication failed".to_owned(),
                Fault::Server,
                "internal",
            ),
            other => (other.to_string(), Fault::Client, "unauthorized"),
        };
        self.error_by(ctx, &Value::Null, "unauthorized", &message, None, fault);
        self.close(ctx, close_code::UNAUTHORIZED, reason, "unauthorized");
    }

    pub(super) fn auth_frame(&mut self, ctx: &mut Context<Self>, token: String) {
        let auth = self.cx.auth.clone();
        let token = SecretString::from(token);
        self.token = Some(token.clone());
        // Frames after this one wait for the answer.
        ctx.wait(
            async move { auth.authenticate(token.expose_secret()).await }
                .into_actor(self)
                .map(|res, act, ctx| match res {
                    Ok(p) => act.authenticated(ctx, p),
                    Err(e) => act.unauthorized(ctx, &e),
                }),
        );
    }

    /// Checks the connection's token again (the cached path: no database
    /// round trip unless the cache expired); a revoked one ends it.
    pub(super) fn recheck_token(&mut self, ctx: &mut Context<Self>) {
        let (Some(token), Some(_)) = (self.token.clone(), self.principal.as_ref()) else {
            return;
        };
        let auth = self.cx.auth.clone();
        ctx.spawn(
            async move { auth.authenticate(token.expose_secret()).await }
                .into_actor(self)
                .map(|res, act, ctx| match res {
                    Ok(_) | Err(AuthError::Internal(_)) => {}
                    Err(e) => act.unauthorized(ctx, &e),
                }),
        );
    }
}
