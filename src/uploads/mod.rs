//! Upload jobs: a request body streamed to Telegram in 512 KiB parts.
//!
//! - The body is cut into parts as it arrives. A part goes to Telegram
//!   through the account's actor (`saveFilePart`, or `saveBigFilePart` with
//!   parts in parallel above 10 MiB) while the next ones are read; reading
//!   waits while `uploads.parallel_parts` parts are in flight, so one upload
//!   holds at most that many parts in memory, whatever the file's size.
//! - A failed part is tried again with backoff; a FLOOD_WAIT pauses the job
//!   (and, through the unread body, the client) for the time Telegram asks,
//!   up to `uploads.max_pause_ms`.
//! - The job's row says where it stands (`GET /uploads/{id}`), and
//!   `upload.progress` events on the account's topic say it as it goes, at
//!   most every `uploads.progress_interval_ms`.
//! - Nothing of the body is kept: a job a restart interrupted cannot be
//!   resumed and is failed (`interrupted`) when the service starts.
//! - Jobs run inside their requests (the body is the request's), and each
//!   is in a registry while it runs. The supervised [`UploaderActor`]
//!   fails, at each of its starts and then periodically, unfinished rows
//!   that no running job owns: whatever way a job ended without recording
//!   it, its row does not stay `receiving`.
//!
//! Here: the [`Uploads`] handle, with the checks made before a body is
//! read and the reads of finished jobs. Around it: `receive` (the body
//! streamed into parts and sent), `job` (a running job's record and
//! events), `sweep` (failing jobs no request runs), `actor` (the
//! [`UploaderActor`] that sweeps), `error`, `view`, `name`, [`metrics`].

mod actor;
mod error;
mod job;
pub mod metrics;
mod name;
mod receive;
mod sweep;
mod view;

pub use actor::UploaderActor;
pub use error::UploadError;
pub use name::validate_name;
pub use view::{UploadFailure, UploadView};

use crate::accounts::supervisor::AccountSupervisor;
use crate::accounts::{AccountService, AccountServiceError};
use crate::config::Settings;
use crate::domain::AccountState;
use crate::domain::UploadStatus;
use crate::entities::upload;
use crate::events::EventLog;
use crate::ratelimit::{Key, RateLimiter};
use crate::telegram::BIG_FILE_THRESHOLD;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use std::sync::Arc;

/// Upload jobs; cheap to clone.
#[derive(Clone)]
pub struct Uploads {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    settings: Arc<Settings>,
    limiter: RateLimiter,
    sessions: AccountSupervisor,
    accounts: AccountService,
    events: EventLog,
    metrics: metrics::UploadMetrics,
    /// Jobs receiving at once (`uploads.max_running`).
    running: Arc<tokio::sync::Semaphore>,
    /// The ids of the jobs running now (see [`Uploads::sweep`]).
    live: std::sync::Mutex<std::collections::HashSet<i64>>,
}

impl Uploads {
    pub fn new(
        db: DatabaseConnection,
        settings: Arc<Settings>,
        limiter: RateLimiter,
        sessions: AccountSupervisor,
        accounts: AccountService,
        events: EventLog,
        metrics: metrics::UploadMetrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                running: Arc::new(tokio::sync::Semaphore::new(
                    settings.uploads.max_running.max(1) as usize,
                )),
                settings,
                limiter,
                sessions,
                accounts,
                events,
                metrics,
                live: Default::default(),
            }),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<i64>> {
        // A panic while the set is held leaves it whole: the lock is poisoned
        // only in name.
        self.inner
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.live().len()
    }

    /// The largest file accepted.
    pub fn max_size(&self) -> u64 {
        self.inner
            .settings
            .rate_limits
            .telegram
            .media_uploads
            .max_size
    }

    /// Spends one of the account's uploads for the minute (the last check
    /// before the body is read: after the name and
    /// [`Uploads::admit_account`]).
    pub fn take_rate(&self, account_id: i64) -> Result<(), UploadError> {
        self.inner
            .limiter
            .check(&Key::media_uploads(account_id))
            .map_err(|t| UploadError::RateLimited(t.retry_after))?;
        Ok(())
    }

    /// The checks made before anything of the body is read: the account
    /// (the user's own, able to upload) and the declared size.
    pub async fn admit_account(
        &self,
        user_id: i64,
        account_id: i64,
        declared: Option<u64>,
    ) -> Result<(), UploadError> {
        match self.inner.accounts.owned(user_id, account_id).await {
            Ok(_) => {}
            Err(AccountServiceError::NotFound) => return Err(UploadError::NotFound),
            Err(e) => return Err(UploadError::Internal(e.into())),
        }
        match declared {
            Some(0) => return Err(UploadError::Empty),
            Some(n) if n > self.max_size() => {
                return Err(UploadError::TooLarge {
                    max: self.max_size(),
                });
            }
            _ => {}
        }
        let state = self
            .inner
            .sessions
            .state(account_id)
            .unwrap_or(AccountState::Stopped);
        // Parts go out now, not later: an account on its way to a
        // connection would fail them after every retry.
        if !matches!(state, AccountState::Connected | AccountState::FloodLimited) {
            return Err(UploadError::Unavailable(state));
        }
        Ok(())
    }

    /// Whether `upload_id` is the user's finished upload on `account_id`
    /// and can be sent as `kind` (what a media message may send): Telegram
    /// takes photos up to 10 MiB, sent with the small-file method.
    pub async fn ready(
        &self,
        user_id: i64,
        account_id: i64,
        upload_id: i64,
        kind: crate::telegram::MediaKind,
    ) -> Result<(), UploadError> {
        let row = upload::Entity::find_by_id(upload_id)
            .filter(upload::Column::UserId.eq(user_id))
            .filter(upload::Column::AccountId.eq(account_id))
            .one(&self.inner.db)
            .await?
            .ok_or(UploadError::UploadNotFound)?;
        match UploadStatus::parse(&row.status) {
            UploadStatus::Done => {}
            other => return Err(UploadError::NotReady(other)),
        }
        let too_big = row.big || row.size.is_some_and(|n| n as u64 > BIG_FILE_THRESHOLD);
        if kind == crate::telegram::MediaKind::Photo && too_big {
            return Err(UploadError::PhotoTooLarge);
        }
        Ok(())
    }

    /// A user's job.
    pub async fn get(&self, user_id: i64, upload_id: i64) -> Result<UploadView, UploadError> {
        upload::Entity::find_by_id(upload_id)
            .filter(upload::Column::UserId.eq(user_id))
            .one(&self.inner.db)
            .await?
            .map(UploadView::from)
            .ok_or(UploadError::UploadNotFound)
    }
}
