//! `/api/v1/accounts*`: the caller's Telegram accounts. Another user's
//! account id answers 404, exactly like an id that does not exist.
//!
//! Handlers parse the request, call the use case (in [`crate::app`] when
//! it spans services) and map its answer to HTTP.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{Authenticated, ClientIp};
use crate::accounts::AccountView;
use crate::accounts::login::LoginProgress;
use crate::app;
use crate::domain::validation::ChatRef;
use crate::telegram::Message;
use actix_web::{HttpResponse, web};
use secrecy::SecretString;
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
    let account = app::import_account(
        &state.app,
        caller.0.user_id,
        &body.phone,
        &body.session,
        ip.0,
    )
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
    app::remove_account(&state.app, caller.0.user_id, *id, ip.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Start signing in an account: Telegram sends a code to the phone.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// The account's phone number in international form (`+…`, 7 to 15
    /// digits; spaces, dashes and parentheses are ignored).
    #[schema(pattern = r"^[ ()-]*\+[ ()-]*[1-9](?:[ ()-]*[0-9]){6,14}[ ()-]*$")]
    pub phone: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts",
    tag = "accounts",
    security(("bearer" = [])),
    request_body = SignInRequest,
    responses(
        (status = 202, description = "Code sent; submit it next", body = LoginProgress),
        (status = 400, description = "Invalid phone number", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Telegram has banned this number", body = ErrorBody),
        (status = 409, description = "This phone number is already one of your accounts", body = ErrorBody),
        (status = 429, description = "Too many sign-ins waiting, or Telegram's flood wait", body = ErrorBody),
        (status = 502, description = "`telegram_error`: Telegram refused the call", body = ErrorBody),
        (status = 503, description = "Telegram could not be reached", body = ErrorBody),
    )
)]
pub async fn start_sign_in(
    state: web::Data<AppState>,
    ip: ClientIp,
    caller: Authenticated,
    body: web::Json<SignInRequest>,
) -> Result<HttpResponse, ApiError> {
    let progress = app::start_sign_in(&state.app, caller.0.user_id, &body.phone, ip.0).await?;
    Ok(HttpResponse::Accepted().json(progress))
}

/// The code Telegram sent to the phone.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    #[schema(format = "password")]
    pub code: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{id}/login/code",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Account id")),
    request_body = CodeRequest,
    responses(
        (status = 200, description = "Signed in, or the 2FA password is needed next", body = LoginProgress),
        (status = 400, description = "`code_invalid`: wrong code (with `attempts_left`)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "`phone_banned`: Telegram has banned this number", body = ErrorBody),
        (status = 404, description = "The account was removed while the code was checked", body = ErrorBody),
        (status = 409, description = "`login_not_pending`: no sign-in waits on this account (or it is another user's); `login_wrong_step`: it waits for the password; `login_busy`: an answer is being checked", body = ErrorBody),
        (status = 410, description = "`login_expired`: the code or the sign-in expired; `too_many_attempts`: too many wrong codes", body = ErrorBody),
        (status = 429, description = "`flood_wait`: Telegram's flood wait", body = ErrorBody),
        (status = 502, description = "`telegram_error`: Telegram refused the call", body = ErrorBody),
        (status = 503, description = "`telegram_unavailable`: Telegram could not be reached", body = ErrorBody),
    )
)]
pub async fn submit_code(
    state: web::Data<AppState>,
    ip: ClientIp,
    caller: Authenticated,
    id: web::Path<i64>,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let progress = app::submit_code(&state.app, caller.0.user_id, *id, &body.code, ip.0).await?;
    Ok(HttpResponse::Ok().json(progress))
}

/// The account's two-step verification password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    #[schema(value_type = String, format = "password")]
    pub password: SecretString,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{id}/login/password",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Account id")),
    request_body = PasswordRequest,
    responses(
        (status = 200, description = "Signed in", body = LoginProgress),
        (status = 400, description = "`password_invalid`: wrong password (with `attempts_left`)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "`phone_banned`: Telegram has banned this number", body = ErrorBody),
        (status = 404, description = "The account was removed while the password was checked", body = ErrorBody),
        (status = 409, description = "`login_not_pending`: no sign-in waits on this account (or it is another user's); `login_wrong_step`: it waits for the code; `login_busy`: an answer is being checked", body = ErrorBody),
        (status = 410, description = "`login_expired`: the sign-in expired; `too_many_attempts`: too many wrong passwords", body = ErrorBody),
        (status = 429, description = "`flood_wait`: Telegram's flood wait", body = ErrorBody),
        (status = 502, description = "`telegram_error`: Telegram refused the call", body = ErrorBody),
        (status = 503, description = "`telegram_unavailable`: Telegram could not be reached", body = ErrorBody),
    )
)]
pub async fn submit_password(
    state: web::Data<AppState>,
    ip: ClientIp,
    caller: Authenticated,
    id: web::Path<i64>,
    body: web::Json<PasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let web::Json(PasswordRequest { password }) = body;
    let progress = app::submit_password(&state.app, caller.0.user_id, *id, password, ip.0).await?;
    Ok(HttpResponse::Ok().json(progress))
}

/// The new active session.
#[derive(serde::Serialize, ToSchema)]
pub struct RotateResponse {
    pub session_id: i64,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{id}/sessions/rotate",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Account id")),
    responses(
        (status = 200, description = "The session was re-encrypted into a new row (fresh nonce, active key); the old one is deactivated", body = RotateResponse),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such account among the caller's", body = ErrorBody),
        (status = 409, description = "`account_not_connected`: the account has no session (`state` says where it is)", body = ErrorBody),
    )
)]
pub async fn rotate_session(
    state: web::Data<AppState>,
    ip: ClientIp,
    caller: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let session_id = app::rotate_session(&state.app, caller.0.user_id, *id, ip.0).await?;
    Ok(HttpResponse::Ok().json(RotateResponse { session_id }))
}

/// `?limit=` (1–100, default 50) and `?before=` (a message id: the page
/// of messages older than it).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub limit: Option<u32>,
    pub before: Option<i32>,
}

/// A page of a chat's history, newest first.
#[derive(serde::Serialize, ToSchema)]
pub struct HistoryResponse {
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Message>,
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{id}/chats/{chat}/messages",
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Account id"),
        ("chat" = String, Path, description = "`me`, `@username` or a numeric id", pattern = r"^\s*(?:[Mm][Ee]|[Ss][Ee][Ll][Ff]|@[A-Za-z][A-Za-z0-9_]{3,31}|-?[1-9][0-9]{0,18})\s*$"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "The chat's latest messages, newest first", body = HistoryResponse),
        (status = 400, description = "`invalid_input`: a bad chat reference, `limit` or `before`", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "`not_found`: no such account among the caller's; `chat_not_found`: no such chat", body = ErrorBody),
        (status = 409, description = "`account_not_connected`: the account is not connected (`state` says where it is); `session_invalid`: Telegram no longer accepts its session", body = ErrorBody),
        (status = 429, description = "`flood_wait`: Telegram's flood wait", body = ErrorBody),
        (status = 502, description = "`telegram_error`: Telegram refused the call", body = ErrorBody),
        (status = 503, description = "`telegram_unavailable`: Telegram could not be reached", body = ErrorBody),
    )
)]
pub async fn history(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(i64, String)>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, chat) = path.into_inner();
    state.accounts.owned(caller.0.user_id, id).await?;
    let chat = ChatRef::parse(&chat)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        let mut e = ApiError::bad_request("invalid_input", "limit must be between 1 and 100");
        e.field = Some("limit");
        e.reason = Some("out_of_range");
        return Err(e);
    }
    if query.before.is_some_and(|b| b <= 0) {
        let mut e = ApiError::bad_request("invalid_input", "before must be a positive message id");
        e.field = Some("before");
        e.reason = Some("out_of_range");
        return Err(e);
    }
    let messages = state
        .account_supervisor
        .history(id, chat, limit, query.before)
        .await?;
    Ok(HttpResponse::Ok().json(HistoryResponse { messages }))
}
