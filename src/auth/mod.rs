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

mod error;
mod login;
mod register;
mod store;
mod tokens;
mod views;

pub use error::AuthError;
pub use store::{email_key, username_key};
pub use views::{IssuedToken, Principal, UserView};

use crate::config::Settings;
use crate::security::jwt::JwtKeys;
use crate::security::password::{Argon2Params, PasswordHasher};
use anyhow::Context as _;
use limiter::AttemptLimiter;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::time::Duration;
use tokens::UserAuth;

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
        .with_queue(p.max_waiting, p.max_wait_ms);
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
        let window = limit.window_ms;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                hasher,
                jwt,
                users: moka::future::Cache::builder()
                    .max_capacity(settings.auth.token_cache_capacity)
                    .time_to_live(settings.auth.revocation_check_ms)
                    .build(),
                attempts: AttemptLimiter::new(limit.max, window, 100_000),
                registrations: AttemptLimiter::new(limit.max, window, 100_000),
                registration_open: settings.auth.registration_open,
            }),
        })
    }
}
