//! `spray`: a login spray (random usernames from many client addresses)
//! against a running service, while one real user keeps logging in from
//! an address of their own. Reports what the spray was answered, the real
//! user's login latency, and the service's memory: before, at its peak
//! during the spray, and settled a while after it.
//!
//! Spray workers bind their connections to loopback addresses 127.0.1.x
//! (all of 127/8 is the loopback interface on Linux), `--addresses` of
//! them, so the service sees that many clients. The real user logs in from
//! 127.0.0.1.

use crate::api::Api;
use crate::cli::SprayArgs;
use crate::setup;
use crate::ws::vm_rss_kib;
use anyhow::Context as _;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the service's memory is read during the spray.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, Default, Serialize)]
pub struct SprayReport {
    pub seconds: f64,
    pub workers: usize,
    pub addresses: u16,
    pub attempts: u64,
    /// Spray answers by kind: wrong credentials, rate limited, busy, other.
    pub unauthorized: u64,
    pub rate_limited: u64,
    pub busy: u64,
    pub other: u64,
    pub real_logins: u64,
    pub real_failures: u64,
    pub real_p50_ms: f64,
    pub real_p99_ms: f64,
    pub real_max_ms: f64,
    pub rss_before_kib: Option<u64>,
    pub rss_peak_kib: Option<u64>,
    pub rss_settled_kib: Option<u64>,
}

impl SprayReport {
    pub fn to_json(&self) -> String {
        // unwrap: numbers only; serialising them cannot fail.
        serde_json::to_string(self).unwrap()
    }

    pub fn to_text(&self) -> String {
        let mib =
            |v: Option<u64>| v.map_or("-".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        format!(
            "spray: {} attempts in {:.1} s from {} workers on {} addresses: {} 401, {} 429, {} 503 busy, {} other\n\
             real user: {} logins, {} failed, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n\
             service memory: {} before, peak {}, settled {}\n",
            self.attempts,
            self.seconds,
            self.workers,
            self.addresses,
            self.unauthorized,
            self.rate_limited,
            self.busy,
            self.other,
            self.real_logins,
            self.real_failures,
            self.real_p50_ms,
            self.real_p99_ms,
            self.real_max_ms,
            mib(self.rss_before_kib),
            mib(self.rss_peak_kib),
            mib(self.rss_settled_kib),
        )
    }

    /// The real user could not always log in.
    pub fn failed(&self) -> bool {
        self.real_failures > 0 || self.real_logins == 0
    }
}

#[derive(Default)]
struct Counts {
    attempts: AtomicU64,
    unauthorized: AtomicU64,
    rate_limited: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
}

/// The spray's `i`-th source address.
fn address(i: u16) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        1 + (i / 250) as u8,
        1 + (i % 250) as u8,
    ))
}

fn random_name() -> String {
    let tail: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(12)
        .map(char::from)
        .collect();
    format!("spray_{}", tail.to_ascii_lowercase())
}

pub async fn run(args: &SprayArgs) -> anyhow::Result<SprayReport> {
    let api = Api::new(&args.url, 4, Duration::from_secs(30))?;
    let (username, password) = setup::register(&api).await?;
    let login = |api: &Api| {
        api.request(reqwest::Method::POST, "/api/v1/auth/login")
            .json(&serde_json::json!({ "username": username, "password": password }))
    };
    // The real user's first login, before the spray: it must work.
    let first = login(&api)
        .send()
        .await
        .context("logging in before the spray")?;
    anyhow::ensure!(
        first.status().is_success(),
        "the real user cannot log in: {}",
        first.status()
    );

    let rss = |pid: Option<u32>| pid.and_then(vm_rss_kib);
    let mut report = SprayReport {
        workers: args.workers,
        addresses: args.addresses,
        rss_before_kib: rss(args.server_pid),
        ..Default::default()
    };
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut tasks = Vec::with_capacity(args.workers);
    for w in 0..args.workers {
        let local = address((w % usize::from(args.addresses)) as u16);
        let client = reqwest::Client::builder()
            .local_address(local)
            .timeout(Duration::from_secs(30))
            .build()?;
        let url = format!("{}/api/v1/auth/login", api.base());
        let counts = counts.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let body =
                    serde_json::json!({ "username": random_name(), "password": "guess-guess" });
                let status = client
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                counts.attempts.fetch_add(1, Ordering::Relaxed);
                let slot = match status {
                    Ok(401) => &counts.unauthorized,
                    Ok(429) => &counts.rate_limited,
                    Ok(503) => &counts.busy,
                    _ => &counts.other,
                };
                slot.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // The real user, and the memory samples, while the spray runs.
    // Microseconds, as every report of this tool records them.
    let mut latencies = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut peak = report.rss_before_kib;
    let mut next_login = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= next_login {
            let t = Instant::now();
            let ok = login(&api)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            latencies.saturating_record(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
            report.real_logins += 1;
            report.real_failures += u64::from(!ok);
            next_login = t + args.real_every;
        }
        peak = peak.max(rss(args.server_pid));
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.rss_peak_kib = peak.max(rss(args.server_pid));
    tokio::time::sleep(args.settle).await;
    report.rss_settled_kib = rss(args.server_pid);
    let c = &counts;
    report.attempts = c.attempts.load(Ordering::Relaxed);
    report.unauthorized = c.unauthorized.load(Ordering::Relaxed);
    report.rate_limited = c.rate_limited.load(Ordering::Relaxed);
    report.busy = c.busy.load(Ordering::Relaxed);
    report.other = c.other.load(Ordering::Relaxed);
    if let Some(l) = crate::report::latency(&latencies) {
        report.real_p50_ms = l.p50;
        report.real_p99_ms = l.p99;
        report.real_max_ms = l.max;
    }
    Ok(report)
}
