//! A running job's record: its progress, the guard that fails it when its
//! request goes away, and the writes of its row and its `upload.progress`
//! events.

use super::Uploads;
use super::error::UploadError;
use super::view::UploadView;
use crate::domain::UploadStatus;
use crate::entities::upload;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use std::time::Duration;
use tokio::time::Instant;

/// One job's progress while its body is read.
#[derive(Clone, Copy)]
pub(super) struct Job {
    pub(super) id: i64,
    pub(super) account_id: i64,
    pub(super) file_id: i64,
    /// Given for big files (Telegram's `file_total_parts`).
    pub(super) total_parts: Option<u32>,
    /// Known from a declared size, else at the end.
    pub(super) parts_total: Option<u32>,
    pub(super) bytes: u64,
    pub(super) parts_done: u32,
    pub(super) status: UploadStatus,
    pub(super) last_progress: Instant,
}

/// Holds a running job's place in the registry; fails the job if its
/// request went away before its end was recorded (see [`Uploads::receive`]).
pub(super) struct JobGuard {
    uploads: Uploads,
    /// The job as last known (for the final event).
    pub(super) job: Job,
    pub(super) armed: bool,
}

impl JobGuard {
    pub(super) fn new(uploads: Uploads, job: Job) -> Self {
        uploads.live().insert(job.id);
        Self {
            uploads,
            job,
            armed: true,
        }
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        self.uploads.live().remove(&self.job.id);
        if !self.armed {
            return;
        }
        let m = &self.uploads.inner.metrics;
        m.running.dec();
        m.jobs.with_label_values(&["abandoned"]).inc();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime: the service is stopping; start-up fails the job.
            return;
        };
        let id = self.job.id;
        let job = Job {
            status: UploadStatus::Failed,
            ..self.job
        };
        let uploads = self.uploads.clone();
        runtime.spawn(async move {
            let failed = uploads
                .fail_unfinished(Some(id), &UploadError::Abandoned)
                .await;
            if let Err(e) = failed {
                tracing::warn!(error = %e, upload_id = id, "recording an abandoned upload failed");
            }
            uploads.publish(&job, Some(&UploadError::Abandoned), None);
        });
    }
}

impl Uploads {
    /// Records and publishes progress, at most every
    /// `uploads.progress_interval_ms` unless `now`.
    pub(super) async fn progress(&self, job: &mut Job, now: bool) {
        self.progress_with(job, now, None).await;
    }

    /// [`Uploads::progress`]; a pause says how long it lasts.
    pub(super) async fn progress_with(
        &self,
        job: &mut Job,
        now: bool,
        retry_after: Option<Duration>,
    ) {
        let every = self.inner.settings.uploads.progress_interval_ms;
        if !now && job.last_progress.elapsed() < every {
            return;
        }
        job.last_progress = Instant::now();
        let update = upload::ActiveModel {
            id: Set(job.id),
            status: Set(job.status.as_str().to_owned()),
            bytes: Set(job.bytes as i64),
            parts_done: Set(job.parts_done as i32),
            updated_at: Set(chrono::Utc::now().fixed_offset()),
            ..Default::default()
        };
        if let Err(e) = update.update(&self.inner.db).await {
            tracing::warn!(error = %e, upload_id = job.id, "recording upload progress failed");
        }
        self.publish(job, None, retry_after);
    }

    pub(super) fn publish(
        &self,
        job: &Job,
        error: Option<&UploadError>,
        retry_after: Option<Duration>,
    ) {
        let mut data = serde_json::json!({
            "upload_id": job.id,
            "status": job.status,
            "bytes": job.bytes,
            "parts_done": job.parts_done,
            "parts_total": job.parts_total,
        });
        if let Some(e) = error {
            data["error"] = serde_json::json!({"code": e.code(), "message": e.to_string()});
        }
        if let Some(wait) = retry_after {
            data["retry_after_ms"] = serde_json::json!(wait.as_millis() as u64);
        }
        let writer = self
            .inner
            .events
            .writer(&crate::events::account_topic(job.account_id));
        if let Err(later) = writer.try_publish("upload.progress", data) {
            // The topic's queue is full: this one waits its turn.
            actix_rt::spawn(async move {
                let _ = later.await;
            });
        }
    }

    /// Records the job's end.
    pub(super) async fn finish(
        &self,
        job: &Job,
        error: Option<&UploadError>,
    ) -> Result<UploadView, UploadError> {
        let now = chrono::Utc::now().fixed_offset();
        let status = if error.is_some() {
            UploadStatus::Failed
        } else {
            UploadStatus::Done
        };
        let mut update = upload::ActiveModel {
            id: Set(job.id),
            status: Set(status.as_str().to_owned()),
            bytes: Set(job.bytes as i64),
            parts_done: Set(job.parts_done as i32),
            updated_at: Set(now),
            finished_at: Set(Some(now)),
            error_code: Set(error.map(|e| e.code().to_owned())),
            error: Set(error.map(ToString::to_string)),
            ..Default::default()
        };
        if error.is_none() {
            update.size = Set(Some(job.bytes as i64));
            update.parts_total = Set(Some(job.parts_done as i32));
        }
        let row = update.update(&self.inner.db).await?;
        let job = Job {
            status,
            parts_total: if error.is_none() {
                Some(job.parts_done)
            } else {
                job.parts_total
            },
            ..*job
        };
        self.publish(&job, error, None);
        Ok(row.into())
    }

    /// Fails unfinished jobs (one, or all) with `why`; answers how many.
    pub(super) async fn fail_unfinished(
        &self,
        id: Option<i64>,
        why: &UploadError,
    ) -> Result<u64, sea_orm::DbErr> {
        let now = chrono::Utc::now().fixed_offset();
        let mut update = upload::Entity::update_many()
            .col_expr(upload::Column::Status, UploadStatus::Failed.as_str().into())
            .col_expr(upload::Column::ErrorCode, why.code().into())
            .col_expr(upload::Column::Error, why.to_string().into())
            .col_expr(upload::Column::UpdatedAt, now.into())
            .col_expr(upload::Column::FinishedAt, Some(now).into())
            .filter(upload::Column::Status.is_in([
                UploadStatus::Receiving.as_str(),
                UploadStatus::Paused.as_str(),
            ]));
        if let Some(id) = id {
            update = update.filter(upload::Column::Id.eq(id));
        }
        Ok(update.exec(&self.inner.db).await?.rows_affected)
    }
}
