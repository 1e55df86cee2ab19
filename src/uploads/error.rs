//! Why an upload was refused or failed, with the stable code answers,
//! rows and events carry.

use crate::domain::AccountState;
use crate::domain::UploadStatus;
use crate::domain::validation::ValidationError;
use crate::telegram::TgError;
use std::time::Duration;

/// Why an upload was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("no such account")]
    NotFound,
    #[error("no such upload for this account")]
    UploadNotFound,
    #[error("the upload is not finished (status: {})", .0.as_str())]
    NotReady(UploadStatus),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("the file is larger than the limit of {max} bytes")]
    TooLarge { max: u64 },
    #[error("the body is empty: there is no file to upload")]
    Empty,
    #[error(
        "files over 10 MiB need a Content-Length (Telegram must know their part count from the first part)"
    )]
    LengthRequired,
    #[error("too many uploads for this account; retry after the time given")]
    RateLimited(Duration),
    #[error("the account cannot upload now (state: {})", .0.as_str())]
    Unavailable(AccountState),
    #[error("the body ended after {received} of {declared} bytes")]
    Truncated { received: u64, declared: u64 },
    #[error("the file is longer than its declared size of {declared} bytes")]
    LongerThanDeclared { declared: u64 },
    #[error("the body could not be read: {0}")]
    Body(String),
    #[error("no byte of the body arrived for {0:?}")]
    BodyTimeout(Duration),
    #[error("too many uploads are running; retry shortly")]
    Busy,
    #[error("the request ended before the file was received whole")]
    Abandoned,
    #[error("the job stopped (a restart) before the file was received whole; upload it again")]
    Interrupted,
    #[error("Telegram asked to wait {0:?}, longer than uploads allow to pause")]
    FloodWait(Duration),
    #[error("Telegram refused a part: {0}")]
    Telegram(TgError),
    #[error("a photo is at most 10 MiB; send this upload as a document")]
    PhotoTooLarge,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl UploadError {
    /// A stable code for answers, rows and events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound | Self::UploadNotFound => "not_found",
            Self::NotReady(_) => "upload_not_ready",
            Self::Invalid(_) => "invalid_input",
            Self::TooLarge { .. } => "upload_too_large",
            Self::Empty => "empty_upload",
            Self::LengthRequired => "length_required",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable(_) => "account_unavailable",
            Self::Truncated { .. } => "truncated_body",
            Self::LongerThanDeclared { .. } => "size_mismatch",
            Self::Body(_) => "body_error",
            Self::BodyTimeout(_) => "body_timeout",
            Self::Busy => "too_many_uploads",
            Self::Abandoned => "abandoned",
            Self::Interrupted => "interrupted",
            Self::FloodWait(_) => "flood_wait",
            Self::Telegram(_) => "telegram_error",
            Self::PhotoTooLarge => "photo_too_large",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<sea_orm::DbErr> for UploadError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(e.into())
    }
}
