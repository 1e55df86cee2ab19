//! Failing the jobs no request runs any more: those a stop interrupted,
//! and the orphans the uploader actor sweeps.

use super::Uploads;
use super::error::UploadError;
use super::job::Job;
use crate::domain::UploadStatus;
use crate::entities::upload;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use std::time::Duration;
use tokio::time::Instant;

impl Uploads {
    /// Fails the jobs a stop interrupted (their bodies are gone); answers
    /// how many.
    pub async fn fail_interrupted(&self) -> Result<u64, sea_orm::DbErr> {
        self.fail_unfinished(None, &UploadError::Interrupted).await
    }

    /// Fails the unfinished jobs created more than `grace` ago that no
    /// running job owns (their request ended without recording it; the
    /// body is gone), each with a final `upload.progress` event; answers
    /// how many. `grace` covers a job between its row's insert and its
    /// registration.
    pub async fn sweep(&self, grace: Duration) -> Result<u64, sea_orm::DbErr> {
        let cutoff = chrono::Utc::now().fixed_offset()
            - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let rows = upload::Entity::find()
            .filter(upload::Column::Status.is_in([
                UploadStatus::Receiving.as_str(),
                UploadStatus::Paused.as_str(),
            ]))
            .filter(upload::Column::CreatedAt.lt(cutoff))
            .all(&self.inner.db)
            .await?;
        let orphans: Vec<upload::Model> = {
            let live = self.live();
            rows.into_iter().filter(|r| !live.contains(&r.id)).collect()
        };
        let mut failed = 0;
        for row in orphans {
            let why = UploadError::Interrupted;
            if self.fail_unfinished(Some(row.id), &why).await? == 0 {
                continue; // it ended meanwhile
            }
            failed += 1;
            self.inner
                .metrics
                .jobs
                .with_label_values(&[why.code()])
                .inc();
            tracing::warn!(
                upload_id = row.id,
                "an upload no request runs any more was failed"
            );
            let job = Job {
                id: row.id,
                account_id: row.account_id,
                file_id: row.file_id,
                total_parts: None,
                parts_total: row.parts_total.map(|n| n as u32),
                bytes: row.bytes as u64,
                parts_done: row.parts_done as u32,
                status: UploadStatus::Failed,
                last_progress: Instant::now(),
            };
            self.publish(&job, Some(&why), None);
        }
        Ok(failed)
    }
}
