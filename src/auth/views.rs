//! What the auth service hands out: the authenticated [`Principal`], the
//! [`UserView`] the API shows and a freshly [`IssuedToken`].

use crate::entities::user;
use crate::security::jwt::{Claims, Role};
use secrecy::SecretString;

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
