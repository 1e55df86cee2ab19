//! Upload metrics: bytes and parts sent, jobs by outcome, jobs running.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct UploadMetrics {
    /// Bytes Telegram acknowledged.
    pub bytes: IntCounter,
    /// Part calls by result: `ok`, `error` (tried again up to
    /// `uploads.part_attempts` times), `flood_wait` (the job paused).
    pub parts: IntCounterVec,
    /// Jobs ended, by result: `done` or the failure's code.
    pub jobs: IntCounterVec,
    /// Jobs whose body is being received.
    pub running: IntGauge,
}

impl UploadMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            bytes: IntCounter::new(
                "tgvisor_upload_bytes_total",
                "Upload bytes Telegram acknowledged.",
            )?,
            parts: IntCounterVec::new(
                Opts::new(
                    "tgvisor_upload_parts_total",
                    "Upload part calls, by result (ok, error, flood_wait).",
                ),
                &["result"],
            )?,
            jobs: IntCounterVec::new(
                Opts::new(
                    "tgvisor_uploads_total",
                    "Upload jobs ended, by result (done, or the failure's code).",
                ),
                &["result"],
            )?,
            running: IntGauge::new(
                "tgvisor_uploads_running",
                "Upload jobs receiving their body.",
            )?,
        };
        registry.register(Box::new(m.bytes.clone()))?;
        registry.register(Box::new(m.parts.clone()))?;
        registry.register(Box::new(m.jobs.clone()))?;
        registry.register(Box::new(m.running.clone()))?;
        Ok(m)
    }
}
