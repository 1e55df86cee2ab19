//! `/api/v1/auth/*`: register, login, logout-all.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{Authenticated, ClientIp};
use crate::auth::UserView;
use actix_web::{HttpResponse, web};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A new user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3–50 characters: letters, digits, `_`, `.`, `-`. Unique regardless of case.
    #[schema(min_length = 3, max_length = 50)]
    pub username: String,
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    /// 8–128 characters.
    #[schema(min_length = 8, max_length = 128, format = "password")]
    pub password: String,
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    #[schema(format = "password")]
    pub password: String,
}

/// An access token.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub user: UserView,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The user was created", body = UserView),
        (status = 400, description = "`invalid_input`: a bad username, e-mail address or password (`field` and `reason` say which and why)", body = ErrorBody),
        (status = 403, description = "`registration_closed`: registration is closed", body = ErrorBody),
        (status = 409, description = "`user_exists`: username or e-mail taken", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many registrations from this address (`rate_limits.api.auth`)", body = ErrorBody),
        (status = 503, description = "`busy`: every password check is taken and the queue behind them is full (`auth.password.max_waiting`, `max_wait_ms`); retry after `Retry-After` seconds", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn register(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let user = state
        .auth
        .register(&body.username, &body.email, &body.password, ip.0)
        .await?;
    Ok(HttpResponse::Created().json(user))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A token valid for 24 hours", body = TokenResponse),
        (status = 401, description = "`invalid_credentials`: wrong username or password (the same answer for both)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts from this address (`rate_limits.api.auth`, whatever usernames they name); retry after `Retry-After` seconds", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 503, description = "`busy`: every password check is taken and the queue behind them is full (`auth.password.max_waiting`, `max_wait_ms`); retry after `Retry-After` seconds", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn login(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let issued = state
        .auth
        .login(&body.username, &body.password, ip.0)
        .await?;
    let expires_at = chrono::DateTime::from_timestamp(issued.claims.exp, 0).unwrap_or_default();
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(TokenResponse {
            token: issued.token.expose_secret().to_owned(),
            token_type: "Bearer",
            expires_in: issued.claims.exp - issued.claims.iat,
            expires_at,
            user: issued.user,
        }))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/logout-all",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every token of the caller is revoked, this one included"),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
    )
)]
pub async fn logout_all(
    state: web::Data<AppState>,
    ip: ClientIp,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    state.auth.logout_all(caller.0.user_id, ip.0).await?;
    Ok(HttpResponse::NoContent().finish())
}
