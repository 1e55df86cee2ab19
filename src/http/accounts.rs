//! `/api/v1/accounts*`: the caller's Telegram accounts. Another user's
//! account id answers 404, exactly like an id that does not exist.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{Authenticated, ClientIp};
use crate::accounts::AccountView;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

/// An existing session to move in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// The account's phone number in international form (`+…`).
    pub phone: String,
    /// A Telethon `StringSession` (starts with `1`).
    #[schema(format = "password")]
    pub session: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/import",
    tag = "accounts",
    security(("bearer" = [])),
    request_body = ImportRequest,
    responses(
        (status = 201, description = "The account and its encrypted session were stored", body = AccountView),
        (status = 400, description = "Invalid phone number or session string", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 409, description = "This phone number is already one of your accounts", body = ErrorBody),
    )
)]
pub async fn import(
    state: web::Data<AppState>,
    ip: ClientIp,
    caller: Authenticated,
    body: web::Json<ImportRequest>,
) -> Result<HttpResponse, ApiError> {
    let account = state
        .accounts
        .import(caller.0.user_id, &body.phone, &body.session, ip.0)
        .await?;
    Ok(HttpResponse::Created().json(account))
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's accounts", body = Vec<AccountView>),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.accounts.list(caller.0.user_id).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{id}",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Account id")),
    responses(
        (status = 200, description = "The account", body = AccountView),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such account among the caller's", body = ErrorBody),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.accounts.get(caller.0.user_id, *id).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/accounts/{id}",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Account id")),
    responses(
        (status = 204, description = "The account and all its sessions are gone"),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such account among the caller's", body = ErrorBody),
    )
)]
pub async fn remove(
    state: web::Data<AppState>,
    ip: ClientIp,
    caller: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state.accounts.remove(caller.0.user_id, *id, ip.0).await?;
    Ok(HttpResponse::NoContent().finish())
}
