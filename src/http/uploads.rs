//! `POST /api/v1/accounts/{id}/uploads` and `GET /api/v1/uploads/{id}`:
//! upload jobs (see [`crate::uploads`]).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::Authenticated;
use crate::security::validation::ValidationError;
use crate::uploads::{UploadError, UploadView};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        let status = match &e {
            UploadError::NotFound | UploadError::UploadNotFound => {
                return Self::not_found(e.to_string());
            }
            UploadError::NotReady(_) => StatusCode::CONFLICT,
            UploadError::Internal(err) => return Self::internal(err.as_ref()),
            UploadError::Invalid(v) => return (*v).into(),
            UploadError::RateLimited(wait) => return Self::rate_limited(e.to_string(), *wait),
            UploadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            UploadError::LengthRequired => StatusCode::LENGTH_REQUIRED,
            UploadError::Empty | UploadError::Truncated { .. } | UploadError::Body(_) => {
                StatusCode::BAD_REQUEST
            }
            UploadError::Unavailable(_) => StatusCode::CONFLICT,
            UploadError::FloodWait(_) => StatusCode::SERVICE_UNAVAILABLE,
            UploadError::Telegram(_) => StatusCode::BAD_GATEWAY,
        };
        let mut api = Self::new(status, e.code(), e.to_string());
        match e {
            UploadError::FloodWait(wait) => api.retry_after = Some(wait),
            UploadError::Unavailable(state) => api.state = Some(state.as_str()),
            _ => {}
        }
        api
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The file name Telegram shows (1 to 255 bytes, no path).
    pub name: String,
}

/// The body's declared length; a malformed header is the client's error.
fn content_length(req: &HttpRequest) -> Result<Option<u64>, ValidationError> {
    let Some(value) = req.headers().get(header::CONTENT_LENGTH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or(ValidationError::new(
            "content_length",
            "invalid",
            "Content-Length must be a number of bytes",
        ))
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{id}/uploads",
    tag = "uploads",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Account id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file, streamed. With `Content-Length`, an oversized file is refused before a byte is read, and files over 10 MiB use Telegram's big-file method with parts in parallel; without it (chunked), files up to 10 MiB."),
    responses(
        (status = 201, description = "Every part is on Telegram: the upload id can be sent as media", body = UploadView),
        (status = 400, description = "Empty, truncated or unreadable body (`empty_upload`, `truncated_body`, `body_error`), or a bad name (`invalid_input`)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such account of the caller", body = ErrorBody),
        (status = 409, description = "The account cannot upload now (`account_unavailable`, with its state)", body = ErrorBody),
        (status = 411, description = "Over 10 MiB without a Content-Length (`length_required`)", body = ErrorBody),
        (status = 413, description = "Larger than `rate_limits.telegram.media_uploads.max_size` (`upload_too_large`)", body = ErrorBody),
        (status = 415, description = "multipart/form-data is not accepted yet (`unsupported_media_type`)", body = ErrorBody),
        (status = 429, description = "More than `rate_limits.telegram.media_uploads.max` uploads a minute for this account", body = ErrorBody),
        (status = 502, description = "Telegram refused a part (`telegram_error`)", body = ErrorBody),
        (status = 503, description = "Telegram asked to wait longer than `uploads.max_pause_ms` (`flood_wait`, with Retry-After)", body = ErrorBody),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<i64>,
    query: web::Query<UploadQuery>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let account_id = path.into_inner();
    let user_id = caller.0.user_id;
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
    if is_multipart {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as the raw body (application/octet-stream) with ?name=…; multipart/form-data is not accepted yet",
        ));
    }
    let declared = content_length(&req)?;
    state
        .uploads
        .admit(user_id, account_id, &query.name, declared)
        .await?;
    match state
        .uploads
        .receive(user_id, account_id, &query.name, declared, body)
        .await
    {
        Ok(view) => Ok(HttpResponse::Created()
            .insert_header((
                header::LOCATION,
                format!("/api/v1/uploads/{}", view.upload_id),
            ))
            .json(view)),
        Err((upload_id, e)) => {
            if let Some(id) = upload_id {
                tracing::info!(upload_id = id, code = e.code(), "upload failed");
            }
            Err(e.into())
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/uploads/{id}",
    tag = "uploads",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Upload id (from the 201)")),
    responses(
        (status = 200, description = "Where the job stands: status, parts done, bytes, rate, error", body = UploadView),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such upload of the caller", body = ErrorBody),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .uploads
        .get(caller.0.user_id, path.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
