//! Users and access tokens: registration, login, logout-all, and the check
//! every authenticated request goes through.
//!
//! - Passwords are argon2id with the configured pepper as argon2's secret,
//!   hashed on the blocking pool. An unknown username costs one argon2
//!   computation too, and gets the same answer as a wrong password.
//! - Login attempts are limited per client address, across usernames
//!   ([`limiter`]); at most one argon2 run per core at a time, with a
//!   bounded queue behind them (past it: 503 `busy` with Retry-After).
//! - Tokens are HS256 JWTs with a `kid` from a rotatable keyring and the
//!   user's `token_version`; logout-all bumps the version, revoking every
//!   token at once. The current version (and role) of each user is cached
//!   for `auth.revocation_check_ms` (1 s), so a request costs a database
//!   round trip at most once a second per user; logout-all on this node
//!   updates the cache at once, and a change made elsewhere (another node,
//!   the CLI's set-role, a deleted user) is seen within that second. Cached
//!   versions only ever grow, so a slow load cannot bring a revoked version
//!   back.

pub mod limiter;

use crate::audit::{self, Action, Actor, AuditEntry, Outcome};
use crate::config::Settings;
use crate::domain::validation::{Email, Password, Username, ValidationError};
use crate::entities::user;
use crate::security::jwt::{Claims, JwtError, JwtKeys, Role};
use crate::security::password::{Argon2Params, PasswordError, PasswordHasher};
use anyhow::Context as _;
use limiter::AttemptLimiter;
use moka::ops::compute::Op;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Set, SqlErr, TransactionTrait,
};
use secrecy::SecretString;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why an auth operation was refused. Each maps to one HTTP status and code.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("registration is closed on this server")]
    RegistrationClosed,
    #[error("that username or e-mail address is already registered")]
    UserExists,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("too many login attempts; try again later")]
    RateLimited { retry_after: Duration },
    #[error("the server is busy checking passwords; try again shortly")]
    Busy,
    #[error("too many registrations from this address; try again later")]
    RegistrationRateLimited { retry_after: Duration },
    #[error("an access token is required (Authorization: Bearer <token>)")]
    MissingToken,
    #[error("{0}")]
    InvalidToken(JwtError),
    #[error("the token has been revoked")]
    TokenRevoked,
    #[error("this operation requires the admin role")]
    Forbidden,
    #[error("no such user")]
    UnknownUser,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<DbErr> for AuthError {
    fn from(e: DbErr) -> Self {
        Self::Internal(e.into())
    }
}

impl From<PasswordError> for AuthError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => Self::Busy,
            e => Self::Internal(anyhow::anyhow!("password hashing: {e}")),
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: i64,
    pub role: Role,
    /// When the token expires (Unix seconds); long-lived connections close then.
    pub expires_at: i64,
    pub token_id: String,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A user as the API shows it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub email: String,
    /// `user` or `admin`.
    pub role: String,
    pub created_at: chrono::DateTime<chrono::FixedOffset>,
}

impl From<user::Model> for UserView {
    fn from(u: user::Model) -> Self {
        Self {
            id: u.id,
            username: u.username,
            email: u.email,
            role: u.role,
            created_at: u.created_at,
        }
    }
}

/// A freshly issued token.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub token: SecretString,
    pub claims: Claims,
    pub user: UserView,
}

/// What the revocation check needs per user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UserAuth {
    token_version: i64,
    role: Role,
}

/// The auth service; cheap to clone.
#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    hasher: PasswordHasher,
    jwt: JwtKeys,
    users: moka::future::Cache<i64, UserAuth>,
    attempts: AttemptLimiter,
    registrations: AttemptLimiter,
    registration_open: bool,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("jwt", &self.inner.jwt)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn parse_role(s: &str) -> Role {
    if s == "admin" {
        Role::Admin
    } else {
        Role::User
    }
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::User => "user",
    }
}

impl AuthService {
    /// Builds the service from configuration (pepper, JWT keys, limits).
    pub fn from_settings(settings: &Settings, db: DatabaseConnection) -> anyhow::Result<Self> {
        let pepper = settings
            .secrets
            .password_pepper
            .clone()
            .context("secrets.password_pepper is not configured")?;
        let p = &settings.auth.password;
        let hasher = PasswordHasher::new(
            pepper,
            Argon2Params {
                memory_kib: p.memory_kib,
                iterations: p.iterations,
                parallelism: p.parallelism,
            },
        )
        .map_err(|e| anyhow::anyhow!("auth.password / secrets.password_pepper: {e}"))?
        .with_queue(p.max_waiting, Duration::from_millis(p.max_wait_ms));
        let jwt_set = settings
            .secrets
            .jwt
            .clone()
            .context("secrets.jwt is not configured")?;
        let jwt = JwtKeys::new(
            settings.auth.issuer.clone(),
            settings.auth.audience.clone(),
            Duration::from_secs(settings.auth.token_ttl_secs),
            &jwt_set.active,
            jwt_set.keys.into_iter().collect(),
        )
        .map_err(|e| anyhow::anyhow!("secrets.jwt: {e}"))?;
        let limit = &settings.rate_limits.api.auth;
        let window = Duration::from_millis(limit.window_ms);
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                hasher,
                jwt,
                users: moka::future::Cache::builder()
                    .max_capacity(settings.auth.token_cache_capacity)
                    .time_to_live(Duration::from_millis(settings.auth.revocation_check_ms))
                    .build(),
                attempts: AttemptLimiter::new(limit.max, window, 100_000),
                registrations: AttemptLimiter::new(limit.max, window, 100_000),
                registration_open: settings.auth.registration_open,
            }),
        })
    }

    /// Creates a user with the `user` role.
    pub async fn register(
        &self,
        username: &str,
        email: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<UserView, AuthError> {
        if !self.inner.registration_open {
            return Err(AuthError::RegistrationClosed);
        }
        let username = Username::parse_new(username)?;
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        // Per client IP, like logins: registration is open to anyone and
        // each one costs an argon2 run. Counted for good: a registration is
        // not taken back by its success.
        self.inner
            .registrations
            .acquire(ip)
            .map_err(|r| AuthError::RegistrationRateLimited {
                retry_after: r.retry_after,
            })?;
        let db = &self.inner.db;
        let (ukey, ekey) = (username_key(username.as_str()), email_key(email.as_str()));
        let taken = user::Entity::find()
            .filter(
                sea_orm::Condition::any()
                    .add(user::Column::UsernameKey.eq(ukey.as_str()))
                    .add(user::Column::EmailKey.eq(ekey.as_str())),
            )
            .one(db)
            .await?;
        if taken.is_some() {
            return Err(AuthError::UserExists);
        }
        let hash = self.inner.hasher.hash(password.into_secret()).await?;
        let now = chrono::Utc::now().fixed_offset();
        let txn = db.begin().await?;
        let inserted = user::ActiveModel {
            username: Set(username.as_str().to_owned()),
            email: Set(email.as_str().to_owned()),
            username_key: Set(ukey),
            email_key: Set(ekey),
            password_hash: Set(hash),
            role: Set("user".to_owned()),
            token_version: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        let user = match inserted {
            Ok(u) => u,
            // Two registrations raced past the check above.
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(AuthError::UserExists);
            }
            Err(e) => return Err(e.into()),
        };
        audit::record(
            &txn,
            AuditEntry::new(Actor::User(user.id), Action::UserRegister, Outcome::Success)
                .target(format!("user:{}", user.id))
                .ip(ip),
        )
        .await?;
        txn.commit().await?;
        tracing::info!(user_id = user.id, "user registered");
        Ok(user.into())
    }

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
    async fn remember(&self, user_id: i64, value: UserAuth) -> UserAuth {
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

/// Increments the user's token version; returns the updated user.
async fn bump_token_version<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
) -> Result<user::Model, AuthError> {
    let res = user::Entity::update_many()
        .col_expr(
            user::Column::TokenVersion,
            Expr::col(user::Column::TokenVersion).add(1),
        )
        .col_expr(
            user::Column::UpdatedAt,
            Expr::value(chrono::Utc::now().fixed_offset()),
        )
        .filter(user::Column::Id.eq(user_id))
        .exec(conn)
        .await?;
    if res.rows_affected == 0 {
        return Err(AuthError::UnknownUser);
    }
    user::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .ok_or(AuthError::UnknownUser)
}

/// The case-folded form that identifies a username (and keys the login
/// limiter): one Rust function, so SQLite and PostgreSQL agree.
pub fn username_key(username: &str) -> String {
    username.trim().to_lowercase()
}

/// The case-folded form that identifies an e-mail address.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Finds a user by username key.
async fn find_user<C: ConnectionTrait>(conn: &C, key: &str) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::UsernameKey.eq(key))
        .one(conn)
        .await
}
