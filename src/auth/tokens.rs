//! Token checks and revocation: authenticating a bearer token against the
//! user's cached token version and role, logout-all, role changes and the
//! admin check.

use super::AuthService;
use super::error::AuthError;
use super::store::{bump_token_version, find_user, now_secs, parse_role, role_str, username_key};
use super::views::{Principal, UserView};
use crate::audit::{self, Action, Actor, AuditEntry, Outcome};
use crate::entities::user;
use crate::security::jwt::{JwtError, Role};
use moka::ops::compute::Op;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use std::net::IpAddr;

/// What the revocation check needs per user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct UserAuth {
    pub(super) token_version: i64,
    pub(super) role: Role,
}

impl AuthService {
    /// Revokes every token of `user_id` (bumps its token version).
    pub async fn logout_all(&self, user_id: i64, ip: Option<IpAddr>) -> Result<(), AuthError> {
        let txn = self.inner.db.begin().await?;
        let user = bump_token_version(&txn, user_id).await?;
        audit::record(
            &txn,
            AuditEntry::new(Actor::User(user_id), Action::LogoutAll, Outcome::Success)
                .target(format!("user:{user_id}"))
                .ip(ip),
        )
        .await?;
        txn.commit().await?;
        self.remember(
            user_id,
            UserAuth {
                token_version: user.token_version,
                role: parse_role(&user.role),
            },
        )
        .await;
        tracing::info!(user_id, "all tokens revoked");
        Ok(())
    }

    /// Sets a user's role (operator CLI). Revokes the user's tokens: at
    /// once on this node, within `auth.revocation_check_ms` on others (the
    /// CLI is another process, so a running service counts as another node).
    pub async fn set_role(&self, username: &str, role: Role) -> Result<UserView, AuthError> {
        let key = username_key(username);
        let txn = self.inner.db.begin().await?;
        // Write first: on SQLite a transaction that reads and then writes
        // can fail when another connection committed in between.
        let res = user::Entity::update_many()
            .col_expr(user::Column::Role, Expr::value(role_str(role)))
            .col_expr(
                user::Column::TokenVersion,
                Expr::col(user::Column::TokenVersion).add(1),
            )
            .filter(user::Column::UsernameKey.eq(key.as_str()))
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            return Err(AuthError::UnknownUser);
        }
        let user = find_user(&txn, &key).await?.ok_or(AuthError::UnknownUser)?;
        audit::record(
            &txn,
            AuditEntry::new(Actor::Cli, Action::RoleChange, Outcome::Success)
                .target(format!("user:{}", user.id))
                .detail(serde_json::json!({ "role": role_str(role) })),
        )
        .await?;
        txn.commit().await?;
        self.remember(
            user.id,
            UserAuth {
                token_version: user.token_version,
                role,
            },
        )
        .await;
        Ok(user.into())
    }

    /// Checks the admin role against the database, not the cache, so that a
    /// demotion made by the CLI (another process) takes effect at once on
    /// operator routes.
    pub async fn require_admin(&self, principal: &Principal) -> Result<(), AuthError> {
        let user = user::Entity::find_by_id(principal.user_id)
            .one(&self.inner.db)
            .await?
            .ok_or(AuthError::TokenRevoked)?;
        if parse_role(&user.role) != Role::Admin {
            return Err(AuthError::Forbidden);
        }
        Ok(())
    }

    /// Verifies a bearer token and that it has not been revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self
            .inner
            .jwt
            .verify(token, now_secs())
            .map_err(AuthError::InvalidToken)?;
        let user_id = claims
            .user_id()
            .ok_or(AuthError::InvalidToken(JwtError::Malformed))?;
        let mut current = self.current(user_id, false).await?;
        if claims.ver > current.token_version {
            // Issued after our cached value (another node, or a role change
            // made by the CLI): the cache is stale, not the token.
            current = self.current(user_id, true).await?;
        }
        if claims.ver != current.token_version {
            return Err(AuthError::TokenRevoked);
        }
        Ok(Principal {
            user_id,
            role: current.role,
            expires_at: claims.exp,
            token_id: claims.jti,
        })
    }

    /// The user's current token version and role, from the cache or the
    /// database (`reload` skips the cache).
    async fn current(&self, user_id: i64, reload: bool) -> Result<UserAuth, AuthError> {
        if !reload && let Some(u) = self.inner.users.get(&user_id).await {
            return Ok(u);
        }
        let user = user::Entity::find_by_id(user_id)
            .one(&self.inner.db)
            .await?
            // A deleted user's tokens die with it.
            .ok_or(AuthError::TokenRevoked)?;
        let loaded = UserAuth {
            token_version: user.token_version,
            role: parse_role(&user.role),
        };
        Ok(self.remember(user_id, loaded).await)
    }

    /// Caches `value` unless the cache already holds a newer version;
    /// returns what the cache holds afterwards.
    pub(super) async fn remember(&self, user_id: i64, value: UserAuth) -> UserAuth {
        let result = self
            .inner
            .users
            .entry(user_id)
            .and_compute_with(|existing| {
                let op = match existing {
                    Some(e) if e.value().token_version > value.token_version => Op::Nop,
                    _ => Op::Put(value),
                };
                std::future::ready(op)
            })
            .await;
        use moka::ops::compute::CompResult as R;
        match result {
            R::Inserted(e) | R::ReplacedWith(e) | R::Unchanged(e) => e.into_value(),
            R::StillNone(_) | R::Removed(_) => value,
        }
    }
}
