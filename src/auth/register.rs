//! Registration: [`AuthService::register`].

use super::AuthService;
use super::error::AuthError;
use super::store::{email_key, username_key};
use super::views::UserView;
use crate::audit::{self, Action, Actor, AuditEntry, Outcome};
use crate::domain::validation::{Email, Password, Username};
use crate::entities::user;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, SqlErr, TransactionTrait,
};
use std::net::IpAddr;

impl AuthService {
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
}
