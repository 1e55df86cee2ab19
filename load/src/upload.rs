//! `upload`: one file streamed through `POST /accounts/{id}/uploads` to a
//! service whose Telegram is the loopback fake MTProto server; throughput,
//! and how much the service's memory grew.
//!
//! The body is generated on the fly from one 64 KiB buffer, so the tool's
//! own memory stays flat whatever the size. Memory growth is the service's
//! peak resident set after the upload (VmHWM) minus its resident set just
//! before: run each size on a fresh service, since VmHWM only ever grows.

use crate::api::Api;
use crate::cli::UploadArgs;
use crate::setup;
use anyhow::{Context as _, bail};
use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use std::time::{Duration, Instant};

/// Bytes per body chunk.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Serialize)]
pub struct UploadReport {
    pub mib: u32,
    pub seconds: f64,
    pub mib_per_s: f64,
    pub parts: i64,
    pub status: String,
    /// The service's VmRSS before the upload.
    pub server_rss_before_kib: Option<u64>,
    /// The service's VmHWM after it.
    pub server_peak_after_kib: Option<u64>,
    /// Peak minus before.
    pub server_growth_kib: Option<u64>,
    /// The service's CPU during the upload, % of one core.
    pub server_cpu_pct: Option<f64>,
}

impl UploadReport {
    pub fn to_json(&self) -> String {
        // unwrap: numbers and strings only; serialising them cannot fail.
        serde_json::to_string(self).unwrap()
    }

    pub fn to_text(&self) -> String {
        let kib =
            |v: Option<u64>| v.map_or("-".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        format!(
            "uploaded {} MiB in {:.2} s: {:.1} MiB/s, {} parts, status {}\nservice memory: {} before, peak {} after, growth {}; service CPU {}\n",
            self.mib,
            self.seconds,
            self.mib_per_s,
            self.parts,
            self.status,
            kib(self.server_rss_before_kib),
            kib(self.server_peak_after_kib),
            kib(self.server_growth_kib),
            self.server_cpu_pct
                .map_or("-".to_owned(), |c| format!("{c:.1} % of a core")),
        )
    }
}

/// The body: `total` bytes in `CHUNK`s cut from one buffer of random
/// bytes. Random, because real media does not compress (and grammers
/// gzips every request over 512 bytes, keeping the result only when it is
/// smaller): a pattern would measure a compressor, not an upload. The chunk
/// repeats every 64 KiB, beyond deflate's 32 KiB window.
fn body(total: u64) -> reqwest::Body {
    let buf: Bytes = (0..CHUNK)
        .map(|_| rand::random::<u8>())
        .collect::<Vec<u8>>()
        .into();
    let chunks = total.div_ceil(CHUNK as u64);
    let stream = futures_util::stream::iter((0..chunks).map(move |i| {
        let left = total - i * CHUNK as u64;
        let n = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        Ok::<Bytes, std::io::Error>(buf.slice(..n))
    }));
    reqwest::Body::wrap_stream(stream)
}

#[derive(serde::Deserialize)]
struct Job {
    status: String,
    parts_done: i64,
}

/// Runs `upload`: user, account, one upload.
pub async fn run(args: &UploadArgs) -> anyhow::Result<UploadReport> {
    let api = Api::new(&args.url, 2, args.timeout)?;
    let token = setup::register_and_login(&api).await?;
    let api = api.with_token(&token)?;
    let mut accounts = vec![setup::import_session(&api, &args.phone, &args.session).await?];
    setup::wait_connected(&api, &mut accounts, args.connect_timeout).await?;
    let account = accounts[0].id;
    let total = u64::from(args.mib) * 1024 * 1024;
    let pid = args.server_pid;
    let rss_before = pid.and_then(crate::ws::vm_rss_kib);
    let ticks_before = pid.and_then(|p| crate::ws::cpu_ticks(&p.to_string()));
    let started = Instant::now();
    let request = api
        .request(Method::POST, &format!("/api/v1/accounts/{account}/uploads"))
        .query(&[("name", format!("bench-{}mib.bin", args.mib))])
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .header(reqwest::header::CONTENT_LENGTH, total)
        .body(body(total));
    let job: Job = api
        .call(request, StatusCode::CREATED)
        .await
        .context("uploading")?;
    let wall = started.elapsed();
    let ticks_after = pid.and_then(|p| crate::ws::cpu_ticks(&p.to_string()));
    let peak = pid.and_then(|p| {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
        crate::ws::parse_status_kib(&status, "VmHWM:")
    });
    if job.status != "done" {
        bail!("the upload ended {}", job.status);
    }
    let seconds = wall.as_secs_f64().max(f64::EPSILON);
    Ok(UploadReport {
        mib: args.mib,
        seconds,
        mib_per_s: f64::from(args.mib) / seconds,
        parts: job.parts_done,
        status: job.status,
        server_rss_before_kib: rss_before,
        server_peak_after_kib: peak,
        server_growth_kib: peak.zip(rss_before).map(|(p, b)| p.saturating_sub(b)),
        server_cpu_pct: crate::ws::cpu_pct(
            ticks_before,
            ticks_after,
            Duration::from_secs_f64(seconds),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_reads_as_mib() {
        let r = UploadReport {
            mib: 50,
            seconds: 2.0,
            mib_per_s: 25.0,
            parts: 100,
            status: "done".into(),
            server_rss_before_kib: Some(20 * 1024),
            server_peak_after_kib: Some(26 * 1024),
            server_growth_kib: Some(6 * 1024),
            server_cpu_pct: Some(80.0),
        };
        let text = r.to_text();
        assert!(text.contains("25.0 MiB/s"), "{text}");
        assert!(text.contains("growth 6.0 MiB"), "{text}");
        assert!(text.contains("80.0 % of a core"), "{text}");
    }
}
