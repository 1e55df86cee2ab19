//! The `ws` subcommand: WebSocket fan-out.
//!
//! Phase "open": `--connections` connections, `--open-concurrency` at a
//! time, each authenticated with `Authorization: Bearer` and subscribed to
//! the account's topic with `since: null`. Phase "idle": nothing happens for
//! `--idle`; the service's VmRSS is read before the connections opened and
//! now. Phase "fan-out": every 10 ms the publisher asks `POST /debug/events`
//! for the events due by then (`--events-per-sec`), numbered on from the
//! previous call (`first_seq`), one call at a time; every connection reads
//! its frames, records the delivery latency (now − `published_at_us`) and
//! checks the `seq`s ([`SeqTracker`]). After publishing, it waits up to
//! `--drain` for the deliveries under way, then closes every connection.

use crate::api::Api;
use crate::cli::WsArgs;
use crate::duration;
use crate::setup;
use crate::ws_report::{WsReport, WsStats};
use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How often the publisher publishes what is due.
pub const PUBLISH_TICK: Duration = Duration::from_millis(10);
/// Most events one `POST /debug/events` may carry.
const MAX_BATCH: u64 = 10_000;
/// Latency histograms: shards, so connections rarely wait for each other.
const SHARDS: usize = 16;
/// Highest latency recorded (µs); above it, clamped.
const MAX_LATENCY_US: u64 = 600_000_000;
/// Missing `seq`s remembered per connection (to tell a late arrival from a
/// duplicate); beyond it, gaps are only counted.
const MAX_TRACKED_MISSING: usize = 10_000;

/// Per connection: which `seq`s arrived, against 0, 1, 2, … in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeqTracker {
    /// The `seq` expected next (one past the highest seen).
    next: u64,
    /// `seq`s skipped over and not (yet) seen.
    missing: BTreeSet<u64>,
    /// Skipped `seq`s beyond what `missing` holds.
    untracked_missing: u64,
    /// Events received (every `bench.tick`, duplicates included).
    pub received: u64,
    /// A `seq` seen before.
    pub duplicates: u64,
    /// A `seq` that arrived after a higher one.
    pub out_of_order: u64,
}

impl SeqTracker {
    pub fn observe(&mut self, seq: u64) {
        self.received += 1;
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            for s in self.next..seq {
                if self.missing.len() < MAX_TRACKED_MISSING {
                    self.missing.insert(s);
                } else {
                    self.untracked_missing += 1;
                }
            }
            self.next = seq + 1;
        } else if self.missing.remove(&seq) {
            self.out_of_order += 1;
        } else {
            self.duplicates += 1;
        }
    }

    /// `seq`s never seen, given that `published` events (0..published) were
    /// published.
    pub fn gaps(&self, published: u64) -> u64 {
        let missing = self.missing.len() as u64 + self.untracked_missing;
        missing + published.saturating_sub(self.next)
    }

    /// Every one of `published` events seen exactly once, in order.
    pub fn complete(&self, published: u64) -> bool {
        self.gaps(published) == 0 && self.duplicates == 0 && self.out_of_order == 0
    }
}

/// How many events are due `elapsed` into publishing at `rate` per second,
/// capped at `total`.
pub fn due(elapsed: Duration, rate: u32, total: u64) -> u64 {
    let due = elapsed.as_micros().saturating_mul(u128::from(rate)) / 1_000_000;
    u64::try_from(due).unwrap_or(u64::MAX).min(total)
}

/// Events published over `duration` at `rate` per second.
pub fn total_events(duration: Duration, rate: u32) -> u64 {
    due(duration, rate, u64::MAX)
}

/// The WebSocket URL of the gateway at `base` (`http://host:port`).
pub fn ws_url(base: &str) -> String {
    if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}/ws")
    } else {
        format!("ws://{}/ws", base.trim_start_matches("http://"))
    }
}

/// Reads the fields used here of an event frame; everything else
/// (including the padding) is skipped without being kept.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default, borrow)]
    event: Option<&'a str>,
    #[serde(default)]
    data: Option<TickData>,
    #[serde(default, borrow)]
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct TickData {
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    published_at_us: Option<u64>,
}

/// What one text frame is, for the reader.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A `bench.tick` event.
    Tick { seq: u64, published_at_us: u64 },
    /// `subscribed`.
    Subscribed,
    /// An `error` frame with its code.
    Error(String),
    /// Anything else (other events, pongs).
    Other,
    /// Not a frame of the protocol.
    Invalid,
}

pub fn parse_frame(text: &str) -> Parsed {
    let Ok(frame) = serde_json::from_str::<Frame<'_>>(text) else {
        return Parsed::Invalid;
    };
    match frame.kind {
        "event" if frame.event == Some("bench.tick") => match frame.data {
            Some(TickData {
                seq: Some(seq),
                published_at_us: Some(published_at_us),
            }) => Parsed::Tick {
                seq,
                published_at_us,
            },
            _ => Parsed::Invalid,
        },
        "subscribed" => Parsed::Subscribed,
        "error" => Parsed::Error(frame.code.unwrap_or("?").to_owned()),
        _ => Parsed::Other,
    }
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Shared by the connections during the fan-out.
struct Shared {
    histograms: Vec<Mutex<Histogram<u64>>>,
    /// Events received by all connections.
    delivered: AtomicU64,
    /// When the last one arrived, µs after `epoch`.
    last_delivery_us: AtomicU64,
    epoch: Instant,
}

impl Shared {
    fn record(&self, shard: usize, latency_us: u64) {
        let mut h = self.histograms[shard % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        h.saturating_record(latency_us.clamp(1, MAX_LATENCY_US));
    }
}

/// How one connection ended up.
#[derive(Debug, Default)]
struct ConnOutcome {
    tracker: SeqTracker,
    /// Closed by the server or broken before the tool closed it: the close
    /// code (`1000`, `4010`, …), `no_code`, `error` or `eof`.
    disconnect: Option<String>,
    /// Frames that were not the protocol.
    invalid_frames: u64,
}

/// Opening one connection: fine, or why not.
type Opened = Result<(), String>;

/// Opens and subscribes one connection.
async fn open(url: &str, token: &str, topic: &str) -> Result<Ws, String> {
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("request: {e}"))?;
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| "token is not a header value".to_owned())?;
    request.headers_mut().insert("authorization", value);
    // Small buffers: thousands of connections live in this process, and
    // tungstenite zeroes the free part of its read buffer before every
    // read (at 16 KiB that memset was the tool's top entry in a profile;
    // bigger frames simply take more than one read).
    let config = WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(r) => {
                format!("upgrade: HTTP {}", r.status())
            }
            tokio_tungstenite::tungstenite::Error::Io(e) => format!("io: {}", e.kind()),
            other => format!("upgrade: {other}"),
        })?;
    let subscribe = serde_json::json!({
        "type": "subscribe", "id": "bench", "topic": topic, "since": null,
    });
    ws.send(Message::text(subscribe.to_string()))
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match parse_frame(&t) {
                Parsed::Subscribed => return Ok(ws),
                Parsed::Error(code) => return Err(format!("subscribe refused: {code}")),
                _ => {}
            },
            Some(Ok(Message::Close(f))) => {
                return Err(format!(
                    "closed {}",
                    f.map_or("no_code".to_owned(), |f| u16::from(f.code).to_string())
                ));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("subscribe: {e}")),
            None => return Err("eof before subscribed".to_owned()),
        }
    }
}

/// What every connection task needs to open its connection.
struct Target {
    url: String,
    token: String,
    topic: String,
    /// Bounds the connections being opened at a time.
    gate: Semaphore,
    open_timeout: Duration,
}

/// One connection's task: open (reporting on `opened`), then read until
/// `stop`.
async fn connection(
    index: usize,
    target: Arc<Target>,
    opened: mpsc::UnboundedSender<Opened>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Option<ConnOutcome> {
    let Target {
        url,
        token,
        topic,
        gate,
        open_timeout,
    } = &*target;
    let ws = {
        let Ok(_permit) = gate.acquire().await else {
            let _ = opened.send(Err("closed".to_owned()));
            return None;
        };
        match tokio::time::timeout(*open_timeout, open(url, token, topic)).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                let _ = opened.send(Err(e));
                return None;
            }
            Err(_) => {
                let _ = opened.send(Err("timeout".to_owned()));
                return None;
            }
        }
    };
    let _ = opened.send(Ok(()));
    drop(opened);
    let mut ws = ws;
    let mut out = ConnOutcome::default();
    // One future for the whole run, not one per frame.
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => match parse_frame(&t) {
                    Parsed::Tick { seq, published_at_us } => {
                        let now = unix_micros();
                        shared.record(index, now.saturating_sub(published_at_us));
                        out.tracker.observe(seq);
                        shared.delivered.fetch_add(1, Ordering::Relaxed);
                        let at = u64::try_from(shared.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
                        shared.last_delivery_us.fetch_max(at, Ordering::Relaxed);
                    }
                    Parsed::Invalid => out.invalid_frames += 1,
                    _ => {}
                },
                Some(Ok(Message::Close(f))) => {
                    out.disconnect = Some(f.map_or("no_code".to_owned(), |f| u16::from(f.code).to_string()));
                    return Some(out);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) => {
                    out.disconnect = Some("error".to_owned());
                    return Some(out);
                }
                None => {
                    out.disconnect = Some("eof".to_owned());
                    return Some(out);
                }
            }
        }
    }
    // Ours to close; do not wait for the answer for long.
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    Some(out)
}

/// The answer of `POST /debug/events`.
#[derive(Deserialize)]
struct Published {
    published: u64,
}

/// Publishes for `duration`; answers how many events were published and
/// how long publishing took. A failed call ends publishing early.
async fn publish(
    api: &Api,
    topic: &str,
    args: &WsArgs,
    total: u64,
    errors: &mut BTreeMap<String, u64>,
) -> (u64, Duration) {
    let start = Instant::now();
    let mut published = 0u64;
    let mut tick = tokio::time::interval(PUBLISH_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while published < total {
        tick.tick().await;
        let target = due(start.elapsed(), args.events_per_sec, total);
        while published < target {
            let count = (target - published).min(MAX_BATCH);
            let body = serde_json::json!({
                "topic": topic, "count": count, "size": args.size, "first_seq": published,
            });
            let request = api.request(Method::POST, "/debug/events").json(&body);
            match api.call::<Published>(request, StatusCode::OK).await {
                Ok(p) if p.published == count => published += count,
                Ok(p) => {
                    *errors.entry("short_publish".to_owned()).or_default() += 1;
                    published += p.published.min(count);
                    return (published, start.elapsed());
                }
                Err(e) => {
                    *errors.entry(e.kind()).or_default() += 1;
                    eprintln!("tgvisor-load: publishing failed: {e}; stopping the fan-out");
                    return (published, start.elapsed());
                }
            }
        }
    }
    (published, start.elapsed())
}

/// A process's resident set (VmRSS) in KiB.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, "VmRSS:")
}

/// A `<key> <n> kB` line of /proc/<pid>/status.
pub fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// A process's user + system CPU time (clock ticks, USER_HZ = 100 on Linux).
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&stat)
}

/// utime + stime from a /proc/<pid>/stat line (fields 14 and 15; the
/// command name in parentheses may hold spaces).
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU use in percent of one core over `wall`, from two tick readings.
pub fn cpu_pct(before: Option<u64>, after: Option<u64>, wall: Duration) -> Option<f64> {
    let ticks = after?.checked_sub(before?)?;
    let secs = wall.as_secs_f64();
    (secs > 0.0).then(|| (ticks as f64 / 100.0) / secs * 100.0)
}

/// Runs `ws`: setup, open, idle, fan-out, clean-up.
pub async fn run(args: &WsArgs) -> anyhow::Result<WsReport> {
    let api = Api::new(&args.url, 4, args.timeout)?;
    let fixture = setup::prepare(&api, &args.setup()).await?;
    let outcome = measure(&fixture, args).await;
    if !args.keep_accounts {
        setup::remove_accounts(&fixture.api, &fixture.accounts).await;
    }
    outcome
}

async fn measure(fixture: &setup::Fixture, args: &WsArgs) -> anyhow::Result<WsReport> {
    let account = fixture.accounts.first().context("no account imported")?;
    let topic = format!("account:{}", account.id);
    let url = ws_url(fixture.api.base());
    let pid = args.server_pid;
    let rss_before = pid.and_then(vm_rss_kib);
    if pid.is_some() && rss_before.is_none() {
        bail!("cannot read /proc/{}/status", pid.unwrap_or_default());
    }

    // Phase "open".
    eprintln!(
        "tgvisor-load: opening {} connections to {} ({} at a time)",
        args.connections, url, args.open_concurrency
    );
    let shared = Arc::new(Shared {
        histograms: (0..SHARDS)
            .map(|_| {
                // unwrap: the bounds are constants, 1 < MAX_LATENCY_US, 3 figures.
                Mutex::new(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).unwrap())
            })
            .collect(),
        delivered: AtomicU64::new(0),
        last_delivery_us: AtomicU64::new(0),
        epoch: Instant::now(),
    });
    let target = Arc::new(Target {
        url,
        token: fixture.token.clone(),
        topic: topic.clone(),
        gate: Semaphore::new(args.open_concurrency),
        open_timeout: args.timeout,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel();
    let open_start = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for index in 0..args.connections {
        tasks.push(tokio::spawn(connection(
            index,
            target.clone(),
            opened_tx.clone(),
            shared.clone(),
            stop_rx.clone(),
        )));
    }
    drop(opened_tx);
    let mut open_ok = 0usize;
    let mut open_failures: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(result) = opened_rx.recv().await {
        match result {
            Ok(()) => open_ok += 1,
            Err(e) => *open_failures.entry(e).or_default() += 1,
        }
        if open_ok + open_failures.values().sum::<u64>() as usize == args.connections {
            break;
        }
    }
    let open_time = open_start.elapsed();
    eprintln!(
        "tgvisor-load: {open_ok} subscribed, {} failed, in {}",
        args.connections - open_ok,
        duration::format(open_time)
    );

    // Phase "idle".
    tokio::time::sleep(args.idle).await;
    let rss_idle = pid.and_then(vm_rss_kib);

    // Phase "fan-out".
    let total = total_events(args.duration, args.events_per_sec);
    eprintln!(
        "tgvisor-load: publishing {total} events at {}/s for {}",
        args.events_per_sec,
        duration::format(args.duration)
    );
    let pid_str = pid.map(|p| p.to_string());
    let server_cpu_before = pid_str.as_deref().and_then(cpu_ticks);
    let tool_cpu_before = cpu_ticks("self");
    let fan_out_start = Instant::now();
    let fan_out_start_us = u64::try_from(shared.epoch.elapsed().as_micros()).unwrap_or(0);
    let mut publish_errors = BTreeMap::new();
    let (published, publish_time) =
        publish(&fixture.api, &topic, args, total, &mut publish_errors).await;
    let expected = published * open_ok as u64;
    let drain_deadline = Instant::now() + args.drain;
    while shared.delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fan_out_wall = fan_out_start.elapsed();
    let server_cpu_after = pid_str.as_deref().and_then(cpu_ticks);
    let tool_cpu_after = cpu_ticks("self");
    let _ = stop_tx.send(true);

    let mut stats = WsStats {
        connections: args.connections,
        opened: open_ok,
        open_failures,
        open_time,
        published,
        publish_time,
        publish_errors,
        rss_before_kib: rss_before,
        rss_idle_kib: rss_idle,
        server_cpu_pct: cpu_pct(server_cpu_before, server_cpu_after, fan_out_wall),
        tool_cpu_pct: cpu_pct(tool_cpu_before, tool_cpu_after, fan_out_wall),
        ..WsStats::default()
    };
    for task in tasks {
        let Ok(Some(out)) = task.await else { continue };
        stats.deliveries += out.tracker.received;
        stats.gaps += out.tracker.gaps(published);
        stats.duplicates += out.tracker.duplicates;
        stats.out_of_order += out.tracker.out_of_order;
        stats.invalid_frames += out.invalid_frames;
        if !out.tracker.complete(published) {
            stats.incomplete_connections += 1;
        }
        if let Some(code) = out.disconnect {
            *stats.disconnects.entry(code).or_default() += 1;
        }
    }
    let last_us = shared.last_delivery_us.load(Ordering::Relaxed);
    let delivery_span = Duration::from_micros(last_us.saturating_sub(fan_out_start_us));
    stats.delivery_time = delivery_span.max(publish_time);
    let mut merged =
        Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3).context("latency histogram")?;
    for h in &shared.histograms {
        let h = h.lock().unwrap_or_else(PoisonError::into_inner);
        merged.add(&*h).context("merging latency histograms")?;
    }
    Ok(WsReport::new(args, &stats, &merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_order_stream_is_complete() {
        let mut t = SeqTracker::default();
        for s in 0..5 {
            t.observe(s);
        }
        assert_eq!(t.received, 5);
        assert_eq!(t.gaps(5), 0);
        assert!(t.complete(5));
        assert_eq!(t.gaps(7), 2, "a missing tail is a gap");
        assert!(!t.complete(7));
    }

    #[test]
    fn gaps_duplicates_and_late_arrivals() {
        let mut t = SeqTracker::default();
        for s in [0, 1, 4, 2, 2, 4, 6] {
            t.observe(s);
        }
        // Skipped 2, 3 and 5; 2 came late; 2 and 4 came twice.
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.duplicates, 2);
        assert_eq!(t.gaps(7), 2);
        assert_eq!(t.gaps(9), 4);
        assert!(!t.complete(7));
    }

    #[test]
    fn a_huge_gap_is_counted_without_being_remembered() {
        let mut t = SeqTracker::default();
        t.observe(MAX_TRACKED_MISSING as u64 + 100);
        assert_eq!(
            t.gaps(MAX_TRACKED_MISSING as u64 + 101),
            MAX_TRACKED_MISSING as u64 + 100
        );
        assert!(t.missing.len() <= MAX_TRACKED_MISSING);
    }

    #[test]
    fn the_schedule_spreads_events_over_the_duration() {
        assert_eq!(total_events(Duration::from_secs(20), 10), 200);
        assert_eq!(total_events(Duration::from_millis(1500), 3), 4);
        assert_eq!(due(Duration::from_millis(10), 10, 200), 0);
        assert_eq!(due(Duration::from_millis(100), 10, 200), 1);
        assert_eq!(due(Duration::from_millis(10), 100, 2000), 1);
        assert_eq!(due(Duration::from_millis(10), 10_000, u64::MAX), 100);
        assert_eq!(due(Duration::from_secs(60), 10, 200), 200, "capped");
    }

    #[test]
    fn frames_are_read_for_what_the_tool_needs() {
        let tick = r#"{"type":"event","topic":"account:1","offset":9,"event":"bench.tick","data":{"seq":3,"published_at_us":17,"pad":"xxx"}}"#;
        assert_eq!(
            parse_frame(tick),
            Parsed::Tick {
                seq: 3,
                published_at_us: 17
            }
        );
        let other = r#"{"type":"event","topic":"account:1","offset":9,"event":"account.state","data":{"state":"connected"}}"#;
        assert_eq!(parse_frame(other), Parsed::Other);
        assert_eq!(
            parse_frame(
                r#"{"type":"subscribed","id":"bench","topic":"account:1","offset":0,"recovered":true}"#
            ),
            Parsed::Subscribed
        );
        assert_eq!(
            parse_frame(r#"{"type":"error","id":"bench","code":"forbidden","message":"no"}"#),
            Parsed::Error("forbidden".to_owned())
        );
        assert_eq!(parse_frame("not json"), Parsed::Invalid);
        assert_eq!(
            parse_frame(r#"{"type":"event","event":"bench.tick","data":{"seq":1}}"#),
            Parsed::Invalid
        );
    }

    #[test]
    fn the_gateway_url_follows_the_base() {
        assert_eq!(ws_url("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
        assert_eq!(ws_url("https://example.com"), "wss://example.com/ws");
    }

    #[test]
    fn proc_files_are_parsed() {
        let status = "Name:\ttgvisor\nVmHWM:\t  90000 kB\nVmRSS:\t   81234 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(81_234));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
        let stat = "4242 (tg visor) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 25 0 0 20 0 9 0";
        assert_eq!(parse_stat_ticks(stat), Some(175));
        assert_eq!(
            cpu_pct(Some(100), Some(250), Duration::from_secs(1)),
            Some(150.0)
        );
        assert_eq!(cpu_pct(None, Some(250), Duration::from_secs(1)), None);
    }
}
