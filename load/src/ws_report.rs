//! The result of a `ws` run: connections, deliveries/s, delivery latency,
//! gaps and duplicates, disconnects, server memory per idle connection; as
//! text for people or one JSON object for scripts.

use crate::cli::WsArgs;
use crate::duration;
use crate::report::{Latency, latency};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// What a run measured, before it is summed up.
#[derive(Debug, Default, Clone)]
pub struct WsStats {
    pub connections: usize,
    /// Connections upgraded and subscribed.
    pub opened: usize,
    /// Connections that could not be opened, by why.
    pub open_failures: BTreeMap<String, u64>,
    pub open_time: Duration,
    /// Events published.
    pub published: u64,
    pub publish_time: Duration,
    /// Failed publish calls by kind.
    pub publish_errors: BTreeMap<String, u64>,
    /// Events received, all connections together.
    pub deliveries: u64,
    /// From the first publish to the last delivery (at least the publishing time).
    pub delivery_time: Duration,
    /// Published `seq`s a connection never saw, summed.
    pub gaps: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Frames that were not the protocol.
    pub invalid_frames: u64,
    /// Connections that missed, repeated or reordered something.
    pub incomplete_connections: u64,
    /// Connections the server closed (or that broke) before the tool
    /// closed them, by close code.
    pub disconnects: BTreeMap<String, u64>,
    pub rss_before_kib: Option<u64>,
    pub rss_idle_kib: Option<u64>,
    /// Server CPU during the fan-out, percent of one core.
    pub server_cpu_pct: Option<f64>,
    /// This tool's CPU during the fan-out, percent of one core.
    pub tool_cpu_pct: Option<f64>,
}

/// One run, ready to print.
#[derive(Debug, Clone, Serialize)]
pub struct WsReport {
    pub url: String,
    pub connections: usize,
    pub opened: usize,
    pub failed: usize,
    pub open_failures: BTreeMap<String, u64>,
    pub open_s: f64,
    pub idle_s: f64,
    pub events_per_sec: u32,
    pub size: usize,
    pub duration_s: f64,
    pub published: u64,
    /// Events published per second (the target is `events_per_sec`).
    pub published_per_s: f64,
    pub publish_errors: BTreeMap<String, u64>,
    /// `published` × `opened`.
    pub expected_deliveries: u64,
    pub deliveries: u64,
    /// Deliveries per second, from the first publish to the last delivery.
    pub deliveries_per_s: f64,
    pub gaps: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub invalid_frames: u64,
    pub incomplete_connections: u64,
    pub disconnects: BTreeMap<String, u64>,
    /// Delivery latency (receive time − `published_at_us`), `null` when none.
    pub latency_ms: Option<Latency>,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_idle_kib: Option<u64>,
    /// (idle − before) / opened.
    pub server_kib_per_idle_connection: Option<f64>,
    pub server_cpu_pct: Option<f64>,
    pub tool_cpu_pct: Option<f64>,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn per_s(n: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 { round1(n as f64 / s) } else { 0.0 }
}

impl WsReport {
    pub fn new(args: &WsArgs, stats: &WsStats, latency_us: &Histogram<u64>) -> Self {
        let per_conn = match (stats.rss_before_kib, stats.rss_idle_kib, stats.opened) {
            (Some(before), Some(idle), n) if n > 0 => {
                Some(round1((idle as f64 - before as f64) / n as f64))
            }
            _ => None,
        };
        Self {
            url: args.url.clone(),
            connections: stats.connections,
            opened: stats.opened,
            failed: stats.connections - stats.opened,
            open_failures: stats.open_failures.clone(),
            open_s: round1(stats.open_time.as_secs_f64()),
            idle_s: args.idle.as_secs_f64(),
            events_per_sec: args.events_per_sec,
            size: args.size,
            duration_s: args.duration.as_secs_f64(),
            published: stats.published,
            published_per_s: per_s(stats.published, stats.publish_time),
            publish_errors: stats.publish_errors.clone(),
            expected_deliveries: stats.published * stats.opened as u64,
            deliveries: stats.deliveries,
            deliveries_per_s: per_s(stats.deliveries, stats.delivery_time),
            gaps: stats.gaps,
            duplicates: stats.duplicates,
            out_of_order: stats.out_of_order,
            invalid_frames: stats.invalid_frames,
            incomplete_connections: stats.incomplete_connections,
            disconnects: stats.disconnects.clone(),
            latency_ms: latency(latency_us),
            server_rss_before_kib: stats.rss_before_kib,
            server_rss_idle_kib: stats.rss_idle_kib,
            server_kib_per_idle_connection: per_conn,
            server_cpu_pct: stats.server_cpu_pct.map(round1),
            tool_cpu_pct: stats.tool_cpu_pct.map(round1),
        }
    }

    /// A run fails when a connection did not open, publishing failed, or a
    /// connection missed, repeated or reordered an event or was closed.
    pub fn failed(&self) -> bool {
        self.failed > 0
            || self.published == 0
            || !self.publish_errors.is_empty()
            || self.gaps > 0
            || self.duplicates > 0
            || self.out_of_order > 0
            || self.incomplete_connections > 0
            || !self.disconnects.is_empty()
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
        let secs = |s: f64| duration::format(Duration::from_secs_f64(s));
        // Writing into a String cannot fail.
        let _ = writeln!(
            out,
            "tgvisor-load ws → {}\n  {} connections; {} events/s of {} padding bytes for {}",
            self.url,
            self.connections,
            self.events_per_sec,
            self.size,
            secs(self.duration_s),
        );
        let _ = writeln!(
            out,
            "connections  {} opened, {} failed  (in {:.1} s)",
            self.opened, self.failed, self.open_s
        );
        for (why, n) in &self.open_failures {
            let _ = writeln!(out, "  {n:>8}  {why}");
        }
        let _ = writeln!(
            out,
            "published    {}  ({:.1}/s)",
            self.published, self.published_per_s
        );
        for (kind, n) in &self.publish_errors {
            let _ = writeln!(out, "  {n:>8}  publish failed: {kind}");
        }
        let _ = writeln!(
            out,
            "deliveries   {} of {}  ({:.1}/s)",
            self.deliveries, self.expected_deliveries, self.deliveries_per_s
        );
        match &self.latency_ms {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "latency ms   p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
                    l.p50, l.p90, l.p99, l.max
                );
            }
            None => {
                let _ = writeln!(out, "latency      - (nothing delivered)");
            }
        }
        let _ = writeln!(
            out,
            "gaps {}  duplicates {}  out of order {}  invalid frames {}  (connections incomplete: {})",
            self.gaps,
            self.duplicates,
            self.out_of_order,
            self.invalid_frames,
            self.incomplete_connections
        );
        if self.disconnects.is_empty() {
            let _ = writeln!(out, "disconnects  none");
        } else {
            let list: Vec<String> = self
                .disconnects
                .iter()
                .map(|(code, n)| format!("{code}: {n}"))
                .collect();
            let _ = writeln!(out, "disconnects  {}", list.join(", "));
        }
        match (
            self.server_rss_before_kib,
            self.server_rss_idle_kib,
            self.server_kib_per_idle_connection,
        ) {
            (Some(before), Some(idle), Some(per)) => {
                let _ = writeln!(
                    out,
                    "server RSS   {before} KiB before, {idle} KiB idle: {per:.1} KiB per idle connection"
                );
            }
            _ => {
                let _ = writeln!(out, "server RSS   - (no --server-pid)");
            }
        }
        let cpu = |c: Option<f64>| c.map_or("-".to_owned(), |c| format!("{c:.0} %"));
        let _ = writeln!(
            out,
            "CPU (fan-out, % of one core)  server {}  this tool {}",
            cpu(self.server_cpu_pct),
            cpu(self.tool_cpu_pct)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    fn args() -> WsArgs {
        let cli = Cli::parse_from([
            "tgvisor-load",
            "ws",
            "--connections",
            "100",
            "--events-per-sec",
            "10",
            "--duration",
            "10s",
        ]);
        let Command::Ws(a) = cli.command else {
            unreachable!("ws parses as ws")
        };
        a
    }

    fn histogram(values_us: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 600_000_000, 3).expect("bounds");
        for v in values_us {
            h.record(*v).expect("in range");
        }
        h
    }

    fn clean() -> WsStats {
        WsStats {
            connections: 100,
            opened: 100,
            open_time: Duration::from_millis(1500),
            published: 100,
            publish_time: Duration::from_secs(10),
            deliveries: 10_000,
            delivery_time: Duration::from_secs(10),
            rss_before_kib: Some(50_000),
            rss_idle_kib: Some(52_000),
            server_cpu_pct: Some(73.26),
            tool_cpu_pct: Some(20.0),
            ..WsStats::default()
        }
    }

    #[test]
    fn a_clean_run_passes_with_rates_and_memory_per_connection() {
        let r = WsReport::new(&args(), &clean(), &histogram(&[1_000, 2_000, 50_000]));
        assert!(!r.failed());
        assert_eq!(r.expected_deliveries, 10_000);
        assert_eq!(r.deliveries_per_s, 1000.0);
        assert_eq!(r.published_per_s, 10.0);
        assert_eq!(r.server_kib_per_idle_connection, Some(20.0));
        assert_eq!(r.server_cpu_pct, Some(73.3));
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).expect("JSON");
        assert_eq!(json["deliveries"], 10_000);
        assert_eq!(json["server_kib_per_idle_connection"], 20.0);
        assert!(json["latency_ms"]["p99"].as_f64().is_some());
        let text = r.to_text();
        assert!(text.contains("100 opened, 0 failed"), "{text}");
        assert!(text.contains("20.0 KiB per idle connection"), "{text}");
        assert!(text.contains("disconnects  none"), "{text}");
    }

    #[test]
    fn gaps_failures_and_disconnects_fail_the_run() {
        let mut s = clean();
        s.opened = 98;
        s.open_failures.insert("upgrade: HTTP 429".to_owned(), 2);
        s.gaps = 3;
        s.incomplete_connections = 1;
        s.disconnects.insert("4010".to_owned(), 1);
        s.rss_before_kib = None;
        let r = WsReport::new(&args(), &s, &histogram(&[]));
        assert!(r.failed());
        assert_eq!(r.failed, 2);
        assert_eq!(r.expected_deliveries, 9_800);
        assert_eq!(r.server_kib_per_idle_connection, None);
        let text = r.to_text();
        assert!(text.contains("upgrade: HTTP 429"), "{text}");
        assert!(text.contains("disconnects  4010: 1"), "{text}");
        assert!(text.contains("gaps 3"), "{text}");
        assert!(text.contains("nothing delivered"), "{text}");
        assert!(r.to_json().contains("\"latency_ms\":null"));
    }

    #[test]
    fn nothing_published_fails() {
        let mut s = clean();
        s.published = 0;
        s.deliveries = 0;
        assert!(WsReport::new(&args(), &s, &histogram(&[])).failed());
    }
}
