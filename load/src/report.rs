//! The result of a run: counts, errors by kind, accepted sends per second
//! and latency percentiles; as text for people or one JSON object for scripts.

use crate::cli::SendArgs;
use crate::duration;
use crate::load::{Plan, Stats};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
    /// How many requests the figures describe.
    pub samples: u64,
}

/// Percentiles of a histogram recorded in microseconds; `None` when empty.
pub fn latency(h: &Histogram<u64>) -> Option<Latency> {
    if h.is_empty() {
        return None;
    }
    let ms = |us: u64| round3(us as f64 / 1000.0);
    Some(Latency {
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        p99_9: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
        mean: round3(h.mean() / 1000.0),
        samples: h.len(),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One run, ready to print.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub clients: usize,
    pub accounts: usize,
    pub chats: Vec<String>,
    pub idempotency: bool,
    pub warmup_s: f64,
    /// Length of the measured period; the rates below are over it.
    pub duration_s: f64,
    /// Requests finished in the measured period.
    pub requests: u64,
    /// Of those, answered 202 `queued`.
    pub accepted: u64,
    /// Of those, failed.
    pub errors: u64,
    /// Failed requests of the measured period by kind: `<status> <error code>` or `transport <kind>`.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The first failure of each kind (warm-up included), as the service put it.
    pub error_examples: BTreeMap<String, String>,
    pub warmup_requests: u64,
    pub warmup_errors: u64,
    /// Accepted sends per second of the measured period.
    pub accepted_per_s: f64,
    /// Latency of the accepted sends (request sent → answer read), `null` when none.
    pub latency_ms: Option<Latency>,
}

impl Report {
    pub fn new(args: &SendArgs, plan: &Plan, stats: &Stats) -> Self {
        let duration_s = plan.duration.as_secs_f64();
        Self {
            url: args.url.clone(),
            clients: plan.clients,
            accounts: plan.accounts.len(),
            chats: plan.chats.clone(),
            idempotency: plan.idempotency,
            warmup_s: plan.warmup.as_secs_f64(),
            duration_s,
            requests: stats.requests,
            accepted: stats.accepted,
            errors: stats.error_count(),
            errors_by_kind: stats.errors.clone(),
            error_examples: stats.examples.clone(),
            warmup_requests: stats.warmup_requests,
            warmup_errors: stats.warmup_errors,
            accepted_per_s: (stats.accepted as f64 / duration_s * 10.0).round() / 10.0,
            latency_ms: latency(&stats.latency_us),
        }
    }

    /// A run fails when any request failed (warm-up included) or none was accepted.
    pub fn failed(&self) -> bool {
        self.errors > 0 || self.warmup_errors > 0 || self.accepted == 0
    }

    /// One line of JSON.
    pub fn to_json(&self) -> String {
        // unwrap: plain structs with string keys and finite numbers always serialize.
        #[allow(clippy::expect_used)]
        serde_json::to_string(self).expect("the report serializes")
    }

    /// For people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let idem = if self.idempotency { "with" } else { "without" };
        // Writing into a String cannot fail.
        let _ = writeln!(
            out,
            "tgvisor-load send → {}\n  {} clients, {} account(s), chats {}, {idem} idempotency keys\n  measured {} after a {} warm-up",
            self.url,
            self.clients,
            self.accounts,
            self.chats.join(" "),
            duration::format(std::time::Duration::from_secs_f64(self.duration_s)),
            duration::format(std::time::Duration::from_secs_f64(self.warmup_s)),
        );
        let _ = writeln!(out, "requests   {}", self.requests);
        let _ = writeln!(
            out,
            "accepted   {}  ({:.1}/s)",
            self.accepted, self.accepted_per_s
        );
        let _ = writeln!(out, "errors     {}", self.errors);
        for (kind, n) in &self.errors_by_kind {
            let example = self.error_examples.get(kind).map_or("", String::as_str);
            let _ = writeln!(out, "  {n:>8}  {kind}  ({example})");
        }
        if self.warmup_errors > 0 {
            let _ = writeln!(
                out,
                "warm-up    {} request(s), {} failed",
                self.warmup_requests, self.warmup_errors
            );
            for (kind, example) in &self.error_examples {
                if !self.errors_by_kind.contains_key(kind) {
                    let _ = writeln!(out, "            {kind}  ({example})");
                }
            }
        }
        match &self.latency_ms {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "latency ms p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (accepted sends)",
                    l.p50, l.p90, l.p99, l.p99_9, l.max
                );
            }
            None => {
                let _ = writeln!(out, "latency    - (no send was accepted)");
            }
        }
        if self.error_examples.keys().any(|k| k.starts_with("429 ")) {
            let _ = writeln!(
                out,
                "hint: 429 is the service's per-user API limit; start it with \
                 TGVISOR__RATE_LIMITS__API__STANDARD__MAX=100000000 for a benchmark"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Failure;
    use crate::load::new_histogram;
    use clap::Parser as _;
    use std::time::Duration;

    #[test]
    fn percentiles_of_a_uniform_spread_land_where_expected() {
        let mut h = new_histogram();
        for ms in 1..=1000u64 {
            h.record(ms * 1000).expect("in range");
        }
        let l = latency(&h).expect("not empty");
        // HDR keeps 3 significant digits: within 0.1 % of the exact value.
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(near(l.p50, 500.0), "p50 {}", l.p50);
        assert!(near(l.p90, 900.0), "p90 {}", l.p90);
        assert!(near(l.p99, 990.0), "p99 {}", l.p99);
        assert!(near(l.p99_9, 999.0), "p99.9 {}", l.p99_9);
        assert!(near(l.max, 1000.0), "max {}", l.max);
        assert!(near(l.mean, 500.5), "mean {}", l.mean);
        assert_eq!(l.samples, 1000);
    }

    #[test]
    fn one_slow_outlier_shows_in_the_tail_only() {
        let mut h = new_histogram();
        for _ in 0..999 {
            h.record(2_000).expect("in range");
        }
        h.record(250_000).expect("in range");
        let l = latency(&h).expect("not empty");
        assert!((l.p50 - 2.0).abs() < 0.01 && (l.p99 - 2.0).abs() < 0.01);
        assert!((l.max - 250.0).abs() < 0.25, "max {}", l.max);
    }

    #[test]
    fn an_empty_histogram_has_no_percentiles() {
        assert_eq!(latency(&new_histogram()), None);
    }

    fn report(stats: &Stats) -> Report {
        let cli = crate::cli::Cli::parse_from(["tgvisor-load", "send", "--duration", "10s"]);
        let crate::cli::Command::Send(args) = cli.command else {
            unreachable!("send parses as send")
        };
        let plan = Plan {
            accounts: vec![1],
            chats: vec!["me".to_owned()],
            clients: 2,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(10),
            idempotency: false,
        };
        Report::new(&args, &plan, stats)
    }

    #[test]
    fn the_rate_is_over_the_measured_period_and_errors_fail_the_run() {
        let mut s = Stats::default();
        for _ in 0..25 {
            s.record(true, Duration::from_millis(4), Ok(()));
        }
        let r = report(&s);
        assert_eq!(r.accepted_per_s, 2.5);
        assert!(!r.failed());
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).expect("JSON");
        assert_eq!(json["accepted"], 25);
        assert_eq!(json["errors"], 0);
        assert!(json["latency_ms"]["p99_9"].as_f64().is_some());

        s.record(
            true,
            Duration::from_millis(1),
            Err(Failure::Status {
                status: 429,
                code: "rate_limited".to_owned(),
                message: "slow down".to_owned(),
            }),
        );
        let r = report(&s);
        assert!(r.failed());
        assert_eq!(r.errors_by_kind.get("429 rate_limited"), Some(&1));
        let text = r.to_text();
        assert!(text.contains("429 rate_limited"), "{text}");
        assert!(
            text.contains("TGVISOR__RATE_LIMITS__API__STANDARD__MAX"),
            "{text}"
        );
    }

    #[test]
    fn a_run_with_nothing_accepted_fails_and_says_so() {
        let r = report(&Stats::default());
        assert!(r.failed());
        assert!(r.to_text().contains("no send was accepted"));
        assert!(r.to_json().contains("\"latency_ms\":null"));
    }

    #[test]
    fn warm_up_errors_fail_the_run_too() {
        let mut s = Stats::default();
        s.record(true, Duration::from_millis(1), Ok(()));
        s.record(
            false,
            Duration::from_millis(1),
            Err(Failure::Transport {
                kind: "connect",
                detail: "refused".to_owned(),
            }),
        );
        let r = report(&s);
        assert!(r.failed());
        assert!(r.to_text().contains("transport connect"));
    }
}
