//! `POST /api/v1/accounts/{id}/uploads` and `GET /api/v1/uploads/{id}`:
//! upload jobs (see [`crate::uploads`]).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::Authenticated;
use crate::domain::validation::ValidationError;
use crate::uploads::{UploadError, UploadView, validate_name};
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
            UploadError::Empty
            | UploadError::Truncated { .. }
            | UploadError::LongerThanDeclared { .. }
            | UploadError::Body(_)
            | UploadError::PhotoTooLarge => StatusCode::BAD_REQUEST,
            UploadError::Unavailable(_) => StatusCode::CONFLICT,
            UploadError::FloodWait(_) | UploadError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            UploadError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            // Recorded on rows only (a dropped request, a restart): no
            // request is answered with these.
            UploadError::Abandoned | UploadError::Interrupted => StatusCode::BAD_REQUEST,
            UploadError::Telegram(_) => StatusCode::BAD_GATEWAY,
        };
        let mut api = Self::new(status, e.code(), e.to_string());
        match e {
            UploadError::FloodWait(wait) => api.retry_after = Some(wait),
            UploadError::Busy => api.retry_after = Some(std::time::Duration::from_secs(1)),
            UploadError::Unavailable(state) => api.state = Some(state.as_str()),
            _ => {}
        }
        api
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The file name Telegram shows (1 to 255 bytes, no path). Required for
    /// a raw body; a multipart upload takes the file part's `filename`
    /// when it is not given.
    pub name: Option<String>,
    /// The file's exact size in bytes, for multipart uploads (whose
    /// `Content-Length` counts the form around the file too): needed above
    /// 10 MiB, and checked against what arrives.
    pub size: Option<u64>,
}

/// Bytes of form fields before the file part that are read and dropped.
const MAX_FORM_PREAMBLE: usize = 64 * 1024;
/// Form fields before the file part (each costs a header parse, even empty).
const MAX_FORM_FIELDS: usize = 32;

fn bad_form(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_multipart", message)
}

/// The first file part of a multipart body, and its `filename`; the fields
/// before it are read and dropped (up to [`MAX_FORM_PREAMBLE`] bytes and
/// [`MAX_FORM_FIELDS`] fields).
async fn file_part(
    form: &mut actix_multipart::Multipart,
) -> Result<(actix_multipart::Field, Option<String>), ApiError> {
    use futures_util::StreamExt as _;
    let mut skipped = 0usize;
    for _ in 0..=MAX_FORM_FIELDS {
        let mut field = match form.next().await {
            Some(Ok(f)) => f,
            Some(Err(e)) => return Err(bad_form(format!("the form could not be read: {e}"))),
            None => return Err(bad_form("the form has no file part")),
        };
        let filename = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(str::to_owned);
        if filename.is_some() {
            return Ok((field, filename));
        }
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| bad_form(format!("the form could not be read: {e}")))?;
            skipped += chunk.len();
            if skipped > MAX_FORM_PREAMBLE {
                return Err(bad_form(
                    "the form's fields before the file exceed 64 KiB; put the file first",
                ));
            }
        }
    }
    Err(bad_form(
        "the form has more than 32 fields before the file; put the file first",
    ))
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
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file, streamed: the raw body (`?name=` required), or a multipart/form-data form whose first file part is the file (browsers; `?size=` for files over 10 MiB). With a known size an oversized file is refused before a byte is read, and files over 10 MiB use Telegram's big-file method with parts in parallel; without one (chunked), files up to 10 MiB."),
    responses(
        (status = 201, description = "Every part is on Telegram: the upload id can be sent as media", body = UploadView),
        (status = 400, description = "`empty_upload`, `truncated_body`, `size_mismatch` (more bytes than declared), `body_error`: an empty, short, long or unreadable body; `invalid_multipart`: a form without a file part, or unreadable; `invalid_input`: a bad name, `size` or Content-Length", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such account of the caller", body = ErrorBody),
        (status = 408, description = "`body_timeout`: the body sent nothing for `uploads.body_idle_timeout_ms`", body = ErrorBody),
        (status = 409, description = "`account_unavailable`: the account cannot upload now (`state` says where it is)", body = ErrorBody),
        (status = 411, description = "`length_required`: over 10 MiB without a Content-Length", body = ErrorBody),
        (status = 413, description = "`upload_too_large`: larger than `rate_limits.telegram.media_uploads.max_size`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: more than `rate_limits.telegram.media_uploads.max` uploads a minute for this account", body = ErrorBody),
        (status = 502, description = "`telegram_error`: Telegram refused a part", body = ErrorBody),
        (status = 503, description = "`flood_wait`: Telegram asked to wait longer than `uploads.max_pause_ms`; `too_many_uploads`: `uploads.max_running` jobs receive already; retry after `Retry-After`", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
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
    let query = query.into_inner();
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let result = if is_multipart {
        // The account and the declared size first: a refused upload reads
        // nothing of the form.
        state
            .uploads
            .admit_account(user_id, account_id, query.size)
            .await?;
        let mut form = actix_multipart::Multipart::new(req.headers(), body);
        let (field, filename) = file_part(&mut form).await?;
        let name = query.name.or(filename).unwrap_or_default();
        validate_name(&name)?;
        state.uploads.take_rate(account_id)?;
        state
            .uploads
            .receive(user_id, account_id, &name, query.size, field)
            .await
    } else {
        let length = content_length(&req)?;
        let declared = length.or(query.size);
        if let (Some(d), Some(s)) = (length, query.size)
            && d != s
        {
            return Err(ValidationError::new(
                "size",
                "mismatch",
                "size must equal Content-Length for a raw body (or be left out)",
            )
            .into());
        }
        let name = query.name.unwrap_or_default();
        validate_name(&name)?;
        state
            .uploads
            .admit_account(user_id, account_id, declared)
            .await?;
        state.uploads.take_rate(account_id)?;
        state
            .uploads
            .receive(user_id, account_id, &name, declared, body)
            .await
    };
    match result {
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
