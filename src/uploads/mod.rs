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

use crate::accounts::actor::{CallError, SavePart};
use crate::accounts::supervisor::AccountSupervisor;
use crate::accounts::{AccountService, AccountServiceError};
use crate::config::Settings;
use crate::domain::AccountState;
use crate::domain::UploadStatus;
use crate::domain::validation::ValidationError;
use crate::entities::upload;
use crate::events::EventLog;
use crate::ratelimit::{Key, RateLimiter};
use crate::telegram::{BIG_FILE_THRESHOLD, PART_SIZE, TgError};
use actix_web::web::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

mod actor;
pub mod metrics;

pub use actor::UploaderActor;

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

/// Checks a file name: 1 to 255 bytes, no path, no control or invisible
/// format characters, not `.` or `..`, no leading or trailing spaces, no
/// trailing dot.
pub fn validate_name(name: &str) -> Result<(), ValidationError> {
    if name.trim().is_empty() {
        return Err(ValidationError::new(
            "name",
            "required",
            "a file name is required (?name=…)",
        ));
    }
    if name.len() > 255 {
        return Err(ValidationError::new(
            "name",
            "too_long",
            "at most 255 bytes",
        ));
    }
    // `.` and `..` name directories, and a name that ends in a space or a
    // dot is not the name it reads as (Windows drops them when it saves).
    if name == "." || name == ".." || name.ends_with([' ', '.']) || name.starts_with(' ') {
        return Err(ValidationError::new(
            "name",
            "invalid_name",
            "a file name that is not '.' or '..' and does not start with a space or end with a space or a dot",
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || crate::domain::validation::invisible(c) || c == '/' || c == '\\')
    {
        return Err(ValidationError::new(
            "name",
            "invalid_characters",
            "a file name without path separators or control characters",
        ));
    }
    Ok(())
}

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

/// A body that failed to read: cut short when its size was declared.
fn body_error(declared: Option<u64>, received: u64, e: &dyn std::fmt::Display) -> UploadError {
    match declared {
        Some(declared) => UploadError::Truncated { received, declared },
        None => UploadError::Body(e.to_string()),
    }
}

/// How a part's sending ended.
enum Sent {
    Done,
    /// Telegram asked to wait: the job pauses, then sends `bytes` again.
    Flood {
        part: u32,
        bytes: Bytes,
        wait: Duration,
    },
    Failed(UploadError),
}

/// Holds a running job's place in the registry; fails the job if its
/// request went away before its end was recorded (see [`Uploads::receive`]).
struct JobGuard {
    uploads: Uploads,
    /// The job as last known (for the final event).
    job: Job,
    armed: bool,
}

impl JobGuard {
    fn new(uploads: Uploads, job: Job) -> Self {
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

/// One job's progress while its body is read.
#[derive(Clone, Copy)]
struct Job {
    id: i64,
    account_id: i64,
    file_id: i64,
    /// Given for big files (Telegram's `file_total_parts`).
    total_parts: Option<u32>,
    /// Known from a declared size, else at the end.
    parts_total: Option<u32>,
    bytes: u64,
    parts_done: u32,
    status: UploadStatus,
    last_progress: Instant,
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

    /// Runs a job over `body` (admitted: its name valid,
    /// [`Uploads::admit_account`], [`Uploads::take_rate`]): answers
    /// the job once every part is on Telegram, or why it failed (the job's
    /// row says so too).
    pub async fn receive<S, E>(
        &self,
        user_id: i64,
        account_id: i64,
        name: &str,
        declared: Option<u64>,
        mut body: S,
    ) -> Result<UploadView, (Option<i64>, UploadError)>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let Ok(_slot) = self.inner.running.clone().try_acquire_owned() else {
            return Err((None, UploadError::Busy));
        };
        let idle = Duration::from_millis(self.inner.settings.uploads.body_idle_timeout_ms.max(1));
        // No job until there is a byte to upload: an empty body leaves
        // nothing behind.
        let first = loop {
            let Ok(next) = tokio::time::timeout(idle, body.next()).await else {
                return Err((None, UploadError::BodyTimeout(idle)));
            };
            match next {
                Some(Ok(chunk)) if chunk.is_empty() => {}
                Some(Ok(chunk)) => break chunk,
                Some(Err(e)) => return Err((None, body_error(declared, 0, &e))),
                None => return Err((None, UploadError::Empty)),
            }
        };
        let body = futures_util::stream::iter([Ok(first)]).chain(body);
        let big = declared.is_some_and(|n| n > BIG_FILE_THRESHOLD);
        let parts_total = declared.map(|n| n.div_ceil(PART_SIZE as u64) as u32);
        let now = chrono::Utc::now().fixed_offset();
        let row = upload::ActiveModel {
            account_id: Set(account_id),
            user_id: Set(user_id),
            name: Set(name.to_owned()),
            status: Set(UploadStatus::Receiving.as_str().to_owned()),
            size: Set(declared.map(|n| n as i64)),
            bytes: Set(0),
            parts_total: Set(parts_total.map(|n| n as i32)),
            parts_done: Set(0),
            big: Set(big),
            file_id: Set(rand::random::<i64>()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.inner.db)
        .await
        .map_err(|e| (None, e.into()))?;
        let mut job = Job {
            id: row.id,
            account_id,
            file_id: row.file_id,
            total_parts: big.then_some(parts_total.unwrap_or(0)),
            parts_total,
            bytes: 0,
            parts_done: 0,
            status: UploadStatus::Receiving,
            last_progress: Instant::now(),
        };
        // Dropped before the end (the client went away mid-body, and actix
        // dropped the request): the job is failed, not left `receiving`.
        let m = &self.inner.metrics;
        m.running.inc();
        let mut guard = JobGuard::new(self.clone(), job);
        self.progress(&mut job, true).await;
        let result = self.run(&mut job, declared, body).await;
        guard.job = job;
        let outcome = match &result {
            Ok(()) => "done",
            Err(e) => e.code(),
        };
        let answer = match result {
            Ok(()) => self.finish(&job, None).await.map_err(|e| (Some(job.id), e)),
            Err(e) => {
                if let Err(db) = self.finish(&job, Some(&e)).await {
                    tracing::error!(error = %db, upload_id = job.id, "recording a failed upload failed");
                }
                Err((Some(job.id), e))
            }
        };
        // Recorded: nothing left for the guard to do.
        guard.armed = false;
        m.running.dec();
        m.jobs.with_label_values(&[outcome]).inc();
        answer
    }

    /// Reads the body into parts and sends them, `parallel` at a time.
    ///
    /// A FLOOD_WAIT on any part pauses the whole job: no part is sent (and
    /// no more of the body read) until the wait is over; the part that met
    /// it goes again first. The pauses of one job add up to at most
    /// `uploads.max_pause_ms`.
    async fn run<S, E>(
        &self,
        job: &mut Job,
        declared: Option<u64>,
        mut body: S,
    ) -> Result<(), UploadError>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let settings = &self.inner.settings.uploads;
        // Small files go part after part, as Telegram's saveFilePart wants.
        let parallel = if job.total_parts.is_some() {
            settings.parallel_parts.max(1) as usize
        } else {
            1
        };
        let max = self.max_size();
        let idle = Duration::from_millis(settings.body_idle_timeout_ms.max(1));
        let pause_budget = Duration::from_millis(settings.max_pause_ms);
        let mut paused_for = Duration::ZERO;
        let mut not_before: Option<Instant> = None;
        // Parts to send again first (after a FLOOD_WAIT), in order.
        let mut again: std::collections::VecDeque<(u32, Bytes)> = Default::default();
        // The part being filled, allocated at its final size; whole parts
        // wait in `ready` (each its own allocation, freed once sent).
        let mut buf = BytesMut::with_capacity(PART_SIZE);
        let mut ready: std::collections::VecDeque<Bytes> = Default::default();
        let mut next_part: u32 = 0;
        let mut ended = false;
        let mut inflight = FuturesUnordered::new();
        loop {
            if not_before.is_some_and(|t| Instant::now() >= t) {
                not_before = None;
                job.status = UploadStatus::Receiving;
                self.progress(job, true).await;
            }
            // Hand out parts (waiting ones first) while there is room.
            while not_before.is_none() && inflight.len() < parallel {
                let (part, bytes) = if let Some(p) = again.pop_front() {
                    p
                } else if let Some(bytes) = ready.pop_front() {
                    next_part += 1;
                    (next_part - 1, bytes)
                } else if ended && !buf.is_empty() {
                    next_part += 1;
                    (next_part - 1, std::mem::take(&mut buf).freeze())
                } else {
                    break;
                };
                inflight.push(self.send_part(*job, part, bytes));
            }
            if ended
                && buf.is_empty()
                && ready.is_empty()
                && again.is_empty()
                && inflight.is_empty()
            {
                break;
            }
            let want_body = !ended
                && not_before.is_none()
                && inflight.len() < parallel
                && ready.is_empty()
                && again.is_empty();
            let resume = not_before.unwrap_or_else(Instant::now);
            tokio::select! {
                chunk = tokio::time::timeout(idle, body.next()), if want_body => match chunk {
                    Err(_) => return Err(UploadError::BodyTimeout(idle)),
                    Ok(Some(Ok(chunk))) => {
                        job.bytes += chunk.len() as u64;
                        if job.bytes > max {
                            return Err(UploadError::TooLarge { max });
                        }
                        if let Some(d) = declared && job.bytes > d {
                            return Err(UploadError::LongerThanDeclared { declared: d });
                        }
                        if job.total_parts.is_none() && declared.is_none() && job.bytes > BIG_FILE_THRESHOLD {
                            return Err(UploadError::LengthRequired);
                        }
                        let mut rest = &chunk[..];
                        while !rest.is_empty() {
                            let n = (PART_SIZE - buf.len()).min(rest.len());
                            buf.extend_from_slice(&rest[..n]);
                            rest = &rest[n..];
                            if buf.len() == PART_SIZE {
                                let full = std::mem::replace(&mut buf, BytesMut::with_capacity(PART_SIZE));
                                ready.push_back(full.freeze());
                            }
                        }
                    }
                    Ok(Some(Err(e))) => return Err(body_error(declared, job.bytes, &e)),
                    Ok(None) => {
                        ended = true;
                        if job.bytes == 0 {
                            return Err(UploadError::Empty);
                        }
                        if let Some(d) = declared && job.bytes < d {
                            return Err(UploadError::Truncated { received: job.bytes, declared: d });
                        }
                    }
                },
                Some(res) = inflight.next(), if !inflight.is_empty() => match res {
                    Sent::Done => {
                        job.parts_done += 1;
                        self.progress(job, false).await;
                    }
                    Sent::Flood { part, bytes, wait } => {
                        again.push_back((part, bytes));
                        let until = Instant::now() + wait;
                        if not_before.is_none_or(|t| t < until) {
                            paused_for += until.saturating_duration_since(not_before.unwrap_or_else(Instant::now));
                            if paused_for > pause_budget {
                                return Err(UploadError::FloodWait(wait));
                            }
                            not_before = Some(until);
                            job.status = UploadStatus::Paused;
                            self.progress_with(job, true, Some(wait)).await;
                        }
                    }
                    Sent::Failed(e) => return Err(e),
                },
                () = tokio::time::sleep_until(resume), if not_before.is_some() => {}
            }
        }
        Ok(())
    }

    /// Sends one part, trying again with backoff; a FLOOD_WAIT goes back to
    /// the job (which pauses).
    fn send_part(
        &self,
        job: Job,
        part: u32,
        bytes: Bytes,
    ) -> impl std::future::Future<Output = Sent> + 'static {
        let this = self.clone();
        let (account_id, file_id, total_parts) = (job.account_id, job.file_id, job.total_parts);
        async move {
            let inner = &this.inner;
            let settings = &inner.settings.uploads;
            let mut attempt = 0;
            loop {
                let call = SavePart {
                    file_id,
                    part,
                    total_parts,
                    bytes: bytes.clone(),
                };
                let err = match inner.sessions.save_part(account_id, call).await {
                    Ok(()) => {
                        inner.metrics.parts.with_label_values(&["ok"]).inc();
                        inner.metrics.bytes.inc_by(bytes.len() as u64);
                        return Sent::Done;
                    }
                    Err(e) => e,
                };
                match err {
                    CallError::Telegram(TgError::FloodWait { seconds, .. }) => {
                        inner.metrics.parts.with_label_values(&["flood_wait"]).inc();
                        let wait = Duration::from_secs(u64::from(seconds));
                        return Sent::Flood { part, bytes, wait };
                    }
                    CallError::Telegram(e) if !e.is_transient() => {
                        inner.metrics.parts.with_label_values(&["error"]).inc();
                        return Sent::Failed(UploadError::Telegram(e));
                    }
                    CallError::Internal(e) => return Sent::Failed(UploadError::Internal(e)),
                    CallError::Telegram(_) | CallError::NotConnected(_) => {
                        inner.metrics.parts.with_label_values(&["error"]).inc();
                    }
                }
                attempt += 1;
                if attempt >= settings.part_attempts {
                    return Sent::Failed(match err {
                        CallError::NotConnected(state) => UploadError::Unavailable(state),
                        CallError::Telegram(e) => UploadError::Telegram(e),
                        CallError::Internal(e) => UploadError::Internal(e),
                    });
                }
                tracing::debug!(
                    upload_id = job.id,
                    part,
                    attempt,
                    "upload part failed; trying again"
                );
                let backoff = crate::supervisor::Backoff {
                    base: Duration::from_millis(settings.retry_base_ms),
                    factor: 2.0,
                    cap: Duration::from_secs(8),
                    jitter: 0.0,
                };
                tokio::time::sleep(backoff.nominal(attempt - 1)).await;
            }
        }
    }

    /// Records and publishes progress, at most every
    /// `uploads.progress_interval_ms` unless `now`.
    async fn progress(&self, job: &mut Job, now: bool) {
        self.progress_with(job, now, None).await;
    }

    /// [`Uploads::progress`]; a pause says how long it lasts.
    async fn progress_with(&self, job: &mut Job, now: bool, retry_after: Option<Duration>) {
        let every = Duration::from_millis(self.inner.settings.uploads.progress_interval_ms);
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

    fn publish(&self, job: &Job, error: Option<&UploadError>, retry_after: Option<Duration>) {
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
    async fn finish(
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

    /// Fails unfinished jobs (one, or all) with `why`; answers how many.
    async fn fail_unfinished(
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
