//! The users table as auth reads and writes it: lookups by username key,
//! token-version bumps, the case-folded keys and the role's stored form.

use super::error::AuthError;
use crate::entities::user;
use crate::security::jwt::Role;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

pub(super) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(super) fn parse_role(s: &str) -> Role {
    if s == "admin" {
        Role::Admin
    } else {
        Role::User
    }
}

pub(super) fn role_str(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::User => "user",
    }
}

/// Increments the user's token version; returns the updated user.
pub(super) async fn bump_token_version<C: ConnectionTrait>(
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
pub(super) async fn find_user<C: ConnectionTrait>(
    conn: &C,
    key: &str,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::UsernameKey.eq(key))
        .one(conn)
        .await
}
