//! Sign-in: [`AuthService::login`], rate-limited per client address, and
//! the upgrade of a stored hash to the current parameters.

use super::AuthService;
use super::error::AuthError;
use super::store::{find_user, now_secs, parse_role, username_key};
use super::tokens::UserAuth;
use super::views::IssuedToken;
use crate::audit::{self, Action, Actor, AuditEntry, Outcome};
use crate::domain::validation::Username;
use crate::entities::user;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use secrecy::SecretString;
use std::net::IpAddr;

impl AuthService {
    /// Checks a username and password and issues a token.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<IssuedToken, AuthError> {
        let inner = &self.inner;
        // A name that cannot be registered cannot be anyone's: refuse it at
        // once, before it can take space in the limiter or an argon2 run.
        let Ok(name) = Username::parse(username) else {
            return Err(AuthError::InvalidCredentials);
        };
        let key = username_key(name.as_str());
        let attempt = match inner.attempts.acquire(ip) {
            Ok(a) => a,
            Err(refused) => {
                // One audit row per blocked window, not one per request.
                if refused.first {
                    audit::record_or_log(
                        &inner.db,
                        AuditEntry::new(Actor::Anonymous, Action::Login, Outcome::Denied)
                            .ip(ip)
                            .detail(serde_json::json!({ "reason": "rate_limited" })),
                    )
                    .await;
                }
                return Err(AuthError::RateLimited {
                    retry_after: refused.retry_after,
                });
            }
        };
        let user = find_user(&inner.db, &key).await?;
        let secret = SecretString::from(password.to_owned());
        let ok = inner
            .hasher
            .verify(
                secret.clone(),
                user.as_ref().map(|u| u.password_hash.clone()),
            )
            .await?;
        let target = user.as_ref().map(|u| format!("user:{}", u.id));
        let Some(user) = user.filter(|_| ok) else {
            let mut entry = AuditEntry::new(Actor::Anonymous, Action::Login, Outcome::Failure)
                .ip(ip)
                .detail(serde_json::json!({ "reason": "invalid_credentials" }));
            entry.target = target;
            audit::record_or_log(&inner.db, entry).await;
            tracing::info!("login failed");
            return Err(AuthError::InvalidCredentials);
        };
        inner.attempts.succeeded(attempt);
        if inner.hasher.needs_rehash(&user.password_hash) {
            self.rehash(user.id, secret).await;
        }
        let role = parse_role(&user.role);
        let (token, claims) = inner
            .jwt
            .issue(user.id, role, user.token_version, now_secs())
            .map_err(|e| AuthError::Internal(anyhow::anyhow!("issuing a token: {e}")))?;
        self.remember(
            user.id,
            UserAuth {
                token_version: user.token_version,
                role,
            },
        )
        .await;
        audit::record(
            &inner.db,
            AuditEntry::new(Actor::User(user.id), Action::Login, Outcome::Success)
                .target(format!("user:{}", user.id))
                .ip(ip),
        )
        .await?;
        tracing::info!(user_id = user.id, token_id = %claims.jti, "login succeeded");
        Ok(IssuedToken {
            token: SecretString::from(token),
            claims,
            user: user.into(),
        })
    }

    /// Upgrades a stored hash to the current parameters; failures only log.
    async fn rehash(&self, user_id: i64, password: SecretString) {
        let result = async {
            let hash = self.inner.hasher.hash(password).await?;
            user::Entity::update_many()
                .col_expr(user::Column::PasswordHash, Expr::value(hash))
                .filter(user::Column::Id.eq(user_id))
                .exec(&self.inner.db)
                .await?;
            Ok::<_, AuthError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(user_id, error = %e, "upgrading a password hash failed");
        }
    }
}
