//! `/api/v1/accounts/{id}/messages*`: sending through the durable outbox.
//!
//! A 202 means the message is committed: it will be delivered after any
//! crash or restart, once. With an `Idempotency-Key`, a retry of the same
//! request answers the original message (202, `Idempotent-Replayed: true`);
//! the same key with a different request is 409.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::Authenticated;
use crate::domain::MessageStatus;
use crate::domain::validation::ValidationError;
use crate::outbox::{EnqueueError, MessageView, NewMessage};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The header a client sets to make a send safe to retry.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Set on an answer that repeats an earlier one.
pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";

/// A message to send: a text, or a finished upload as media.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// `me` (Saved Messages), `@username` or a numeric chat id.
    #[schema(
        pattern = r"^\s*(?:[Mm][Ee]|[Ss][Ee][Ll][Ff]|@[A-Za-z][A-Za-z0-9_]{3,31}|-?[1-9][0-9]{0,18})\s*$"
    )]
    pub chat: String,
    /// A text message: 1 to 4096 characters (UTF-16 code units, as
    /// Telegram counts), not blank, no control characters but tab and line
    /// breaks. Not with `upload_id`.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*\S[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub text: Option<String>,
    /// A media message: a finished upload of this account (from
    /// `POST /accounts/{id}/uploads`). Not with `text`.
    pub upload_id: Option<i64>,
    /// With `upload_id`: how Telegram shows it.
    pub kind: Option<crate::telegram::MediaKind>,
    /// With `upload_id`: up to 1024 characters, no control characters but
    /// tab and line breaks.
    #[schema(
        max_length = 1024,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub caption: Option<String>,
    /// The Telegram id of the message to reply to.
    #[schema(minimum = 1)]
    pub reply_to: Option<i32>,
    /// Send without a notification.
    #[serde(default)]
    pub silent: bool,
}

/// The accepted message.
#[derive(Serialize, ToSchema)]
pub struct SendResponse {
    /// tgvisor's id of the message (for `GET …/messages/{message_id}`).
    pub message_id: i64,
    /// `queued` for a new message; a replay shows where the original is now.
    pub status: MessageStatus,
}

impl From<EnqueueError> for ApiError {
    fn from(e: EnqueueError) -> Self {
        let (status, message) = match &e {
            EnqueueError::NotFound => return Self::not_found("no such account"),
            EnqueueError::Internal(err) => return Self::internal(err),
            EnqueueError::Unavailable(_) | EnqueueError::KeyReused => {
                (StatusCode::CONFLICT, e.to_string())
            }
            EnqueueError::Closed => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the service is shutting down; try again".to_owned(),
            ),
            EnqueueError::Raced => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        let mut api = Self::new(status, e.code(), message);
        api.retry_after = e.retry_after();
        if let EnqueueError::Unavailable(state) = e {
            api.state = Some(state.as_str());
        }
        api
    }
}

/// The `Idempotency-Key` header's value, if any (checked with the rest of
/// the request by [`NewMessage::validated`]).
fn idempotency_key_header(req: &HttpRequest) -> Result<Option<&str>, ValidationError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    value.to_str().map(Some).map_err(|_| {
        ValidationError::new(
            "idempotency_key",
            "invalid_characters",
            "must be visible ASCII characters (no spaces)",
        )
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{id}/messages",
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Account id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and request answer the original message (1–255 visible ASCII characters)", pattern = "^[!-~]{1,255}$"),
    ),
    request_body = SendRequest,
    responses(
        (status = 202, description = "Accepted and stored: it will be delivered. `Idempotent-Replayed: true` when this answers an earlier request with the same key", body = SendResponse),
        (status = 400, description = "`invalid_input`: empty or too long text, a bad chat reference or Idempotency-Key, text with media fields or neither (`field` and `reason` say which); `photo_too_large`: an upload over 10 MiB sent as a photo", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such account among the caller's, or no such upload of it", body = ErrorBody),
        (status = 409, description = "`idempotency_key_reused`: the key was used for a different request; `account_unavailable`: the account needs its owner (`state` says why); `upload_not_ready`: the upload has not finished", body = ErrorBody),
        (status = 503, description = "`unavailable`: shutting down; `retry`: a concurrent change (the key's earlier message was removed meanwhile); try again after `Retry-After`", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn send(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authenticated,
    id: web::Path<i64>,
    body: web::Json<SendRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let key = idempotency_key_header(&req)?;
    let msg = match (body.text, body.upload_id) {
        (Some(text), None) => {
            if body.kind.is_some() || body.caption.is_some() {
                return Err(ValidationError::new(
                    "caption",
                    "not_allowed",
                    "kind and caption go with upload_id, not with text",
                )
                .into());
            }
            NewMessage::validated(
                *id,
                caller.0.user_id,
                &body.chat,
                text,
                body.reply_to,
                body.silent,
                key,
            )?
        }
        (None, Some(upload_id)) => {
            let Some(kind) = body.kind else {
                return Err(ValidationError::new(
                    "kind",
                    "required",
                    "photo or document, with upload_id",
                )
                .into());
            };
            let media = crate::outbox::Media { upload_id, kind };
            let msg = NewMessage::validated_media(
                *id,
                caller.0.user_id,
                &body.chat,
                media,
                body.caption.unwrap_or_default(),
                body.reply_to,
                body.silent,
                key,
            )?;
            state
                .uploads
                .ready(caller.0.user_id, *id, upload_id, kind)
                .await?;
            msg
        }
        (Some(_), Some(_)) => {
            return Err(ValidationError::new(
                "upload_id",
                "conflict",
                "a message is a text or an upload, not both",
            )
            .into());
        }
        (None, None) => {
            return Err(ValidationError::new("text", "empty", "is required (or upload_id)").into());
        }
    };
    let accepted = state.outbox.enqueue(msg).await?;
    let mut resp = HttpResponse::Accepted();
    if accepted.replayed {
        resp.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    Ok(resp.json(SendResponse {
        message_id: accepted.message_id,
        status: accepted.status,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{id}/messages/{message_id}",
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Account id"),
        ("message_id" = i64, Path, description = "tgvisor's message id (from the 202)"),
    ),
    responses(
        (status = 200, description = "Where the message is", body = MessageView),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such message on the caller's account", body = ErrorBody),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (account_id, message_id) = path.into_inner();
    match state
        .outbox
        .get(caller.0.user_id, account_id, message_id)
        .await
    {
        Ok(Some(view)) => Ok(HttpResponse::Ok().json(view)),
        Ok(None) => Err(ApiError::not_found("no such message")),
        Err(e) => Err(ApiError::internal(&e)),
    }
}
