//! Receiving a job: the body streamed into parts, the parts sent to
//! Telegram (in parallel for big files, tried again with backoff, paused by
//! a FLOOD_WAIT), and the job's end recorded.

use super::Uploads;
use super::error::UploadError;
use super::job::{Job, JobGuard};
use super::view::UploadView;
use crate::accounts::actor::{CallError, SavePart};
use crate::domain::UploadStatus;
use crate::entities::upload;
use crate::telegram::{BIG_FILE_THRESHOLD, PART_SIZE, TgError};
use actix_web::web::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use sea_orm::{ActiveModelTrait, Set};
use std::time::Duration;
use tokio::time::Instant;

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

impl Uploads {
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
        let idle = self
            .inner
            .settings
            .uploads
            .body_idle_timeout_ms
            .max(Duration::from_millis(1));
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
        let idle = settings.body_idle_timeout_ms.max(Duration::from_millis(1));
        let pause_budget = settings.max_pause_ms;
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
                    base: settings.retry_base_ms,
                    factor: 2.0,
                    cap: Duration::from_secs(8),
                    jitter: 0.0,
                };
                tokio::time::sleep(backoff.nominal(attempt - 1)).await;
            }
        }
    }
}
