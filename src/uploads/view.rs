//! An upload job as the API shows it.

use crate::domain::UploadStatus;
use crate::entities::upload;
use serde::Serialize;

/// An upload job as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UploadView {
    pub upload_id: i64,
    pub account_id: i64,
    pub name: String,
    pub status: UploadStatus,
    /// Bytes, once known (from `Content-Length`, else at the end).
    pub size: Option<i64>,
    /// Bytes received so far.
    pub bytes: i64,
    pub parts_total: Option<i32>,
    /// Parts Telegram acknowledged.
    pub parts_done: i32,
    /// Bytes per second over the job's life so far (or its whole life).
    pub rate_bytes_per_s: Option<f64>,
    pub error: Option<UploadFailure>,
    pub created_at: chrono::DateTime<chrono::FixedOffset>,
    pub updated_at: chrono::DateTime<chrono::FixedOffset>,
    pub finished_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UploadFailure {
    pub code: String,
    pub message: String,
}

impl From<upload::Model> for UploadView {
    fn from(m: upload::Model) -> Self {
        let end = m.finished_at.unwrap_or(m.updated_at);
        let secs = (end - m.created_at).num_milliseconds() as f64 / 1000.0;
        let rate = (secs > 0.0 && m.bytes > 0).then(|| m.bytes as f64 / secs);
        let error = m.error_code.map(|code| UploadFailure {
            code,
            message: m.error.unwrap_or_default(),
        });
        Self {
            upload_id: m.id,
            account_id: m.account_id,
            name: m.name,
            status: UploadStatus::parse(&m.status),
            size: m.size,
            bytes: m.bytes,
            parts_total: m.parts_total,
            parts_done: m.parts_done,
            rate_bytes_per_s: rate,
            error,
            created_at: m.created_at,
            updated_at: m.updated_at,
            finished_at: m.finished_at,
        }
    }
}
