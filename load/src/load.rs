//! The load: `clients` tasks, each posting one message at a time over the
//! shared client until the measured period ends, and the statistics they
//! keep (merged at the end, so the hot loop shares nothing but the pool).

use crate::api::{Api, Failure};
use hdrhistogram::Histogram;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

/// Highest latency the histogram holds exactly, in microseconds (an hour);
/// longer ones are recorded as this.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by the histogram (0.1 % resolution).
const HISTOGRAM_SIGFIG: u8 = 3;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Account ids; client `i` sends from `accounts[i % len]`.
    pub accounts: Vec<i64>,
    /// Chat references; each client rotates over them.
    pub chats: Vec<String>,
    /// Concurrent senders.
    pub clients: usize,
    /// Load before measuring, not counted.
    pub warmup: Duration,
    /// The measured period.
    pub duration: Duration,
    /// Send an `Idempotency-Key` with every request.
    pub idempotency: bool,
}

/// What the clients saw.
#[derive(Debug)]
pub struct Stats {
    /// Latency of accepted sends in the measured period, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Requests answered (or failed) within the measured period.
    pub requests: u64,
    /// Of those, answered 202 `queued`.
    pub accepted: u64,
    /// Of those, the rest by kind (`429 rate_limited`, `transport timeout`).
    pub errors: BTreeMap<String, u64>,
    /// Requests answered during the warm-up.
    pub warmup_requests: u64,
    /// Of those, failed.
    pub warmup_errors: u64,
    /// The first failure of each kind, warm-up included, for people.
    pub examples: BTreeMap<String, String>,
}

/// An empty latency histogram, in microseconds.
pub fn new_histogram() -> Histogram<u64> {
    // unwrap: constant bounds that satisfy new_with_bounds' rules (low ≥ 1, high ≥ 2·low, sigfig ≤ 5).
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, HISTOGRAM_SIGFIG).expect("valid bounds")
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            latency_us: new_histogram(),
            requests: 0,
            accepted: 0,
            errors: BTreeMap::new(),
            warmup_requests: 0,
            warmup_errors: 0,
            examples: BTreeMap::new(),
        }
    }
}

impl Stats {
    /// Counts one finished request.
    pub fn record(&mut self, measured: bool, latency: Duration, outcome: Result<(), Failure>) {
        if let Err(f) = &outcome {
            self.examples
                .entry(f.kind())
                .or_insert_with(|| f.to_string());
        }
        match (measured, outcome) {
            (true, Ok(())) => {
                self.requests += 1;
                self.accepted += 1;
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency_us.saturating_record(us.max(1));
            }
            (true, Err(f)) => {
                self.requests += 1;
                *self.errors.entry(f.kind()).or_default() += 1;
            }
            (false, outcome) => {
                self.warmup_requests += 1;
                self.warmup_errors += u64::from(outcome.is_err());
            }
        }
    }

    /// Adds another client's statistics to these.
    pub fn merge(&mut self, other: Stats) {
        // Same bounds on both sides: adding cannot fail; saturate if it ever did.
        if self.latency_us.add(&other.latency_us).is_err() {
            for v in other.latency_us.iter_recorded() {
                self.latency_us
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        self.requests += other.requests;
        self.accepted += other.accepted;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.warmup_requests += other.warmup_requests;
        self.warmup_errors += other.warmup_errors;
        for (kind, example) in other.examples {
            self.examples.entry(kind).or_insert(example);
        }
    }

    /// Failed requests in the measured period.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// When to start counting and when to stop.
#[derive(Clone, Copy)]
struct Window {
    /// Requests sent from here on are measured.
    measure_from: Instant,
    /// No request is sent, or counted, from here on.
    end: Instant,
}

/// Runs the plan and returns the merged statistics.
pub async fn run(api: &Api, plan: &Plan) -> anyhow::Result<Stats> {
    anyhow::ensure!(!plan.accounts.is_empty(), "no accounts to send from");
    anyhow::ensure!(!plan.chats.is_empty(), "no chats to send to");
    // Numeric ids go out as strings too: the route's `chat` is a string.
    let chats: Arc<[Value]> = plan.chats.iter().map(|c| json!(c)).collect();
    let start = Instant::now();
    let window = Window {
        measure_from: start + plan.warmup,
        end: start + plan.warmup + plan.duration,
    };
    let mut tasks = JoinSet::new();
    for index in 0..plan.clients {
        let account = plan.accounts[index % plan.accounts.len()];
        tasks.spawn(client(
            api.clone(),
            index,
            account,
            Arc::clone(&chats),
            window,
            plan.idempotency,
        ));
    }
    let mut total = Stats::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(stats) => total.merge(stats),
            Err(e) => anyhow::bail!("a client task died: {e}"),
        }
    }
    Ok(total)
}

/// One sender: a request at a time until the window ends.
async fn client(
    api: Api,
    index: usize,
    account: i64,
    chats: Arc<[Value]>,
    window: Window,
    idempotency: bool,
) -> Stats {
    let path = format!("/api/v1/accounts/{account}/messages");
    let mut stats = Stats::default();
    let mut seq: usize = 0;
    while Instant::now() < window.end {
        let chat = &chats[index.wrapping_add(seq) % chats.len()];
        let body = json!({ "chat": chat, "text": format!("load {index}-{seq}") });
        let mut request = api.request(Method::POST, &path).json(&body);
        if idempotency {
            request = request.header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
        }
        seq += 1;
        let started = Instant::now();
        let outcome = tokio::select! {
            outcome = send_one(&api, request) => outcome,
            // A request still open at the end is dropped, not counted.
            () = sleep_until(window.end) => break,
        };
        let finished = Instant::now();
        if finished >= window.end {
            break;
        }
        stats.record(started >= window.measure_from, finished - started, outcome);
    }
    stats
}

/// Sends one message; `Ok` means 202 with `{"message_id", "status": "queued"}`.
async fn send_one(api: &Api, request: reqwest::RequestBuilder) -> Result<(), Failure> {
    let body = api.exchange(request, StatusCode::ACCEPTED).await?;
    check_queued(&body)
}

/// The answer a send expects.
#[derive(Deserialize)]
struct Queued {
    message_id: i64,
    status: String,
}

/// Checks a 202 body: a positive `message_id` and `status: "queued"`.
pub fn check_queued(body: &[u8]) -> Result<(), Failure> {
    let unexpected = |what: &str| Failure::Status {
        status: 202,
        code: "unexpected_body".to_owned(),
        message: format!(
            "{what}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
    };
    match serde_json::from_slice::<Queued>(body) {
        Ok(q) if q.status == "queued" && q.message_id > 0 => Ok(()),
        Ok(_) => Err(unexpected(
            "expected a positive message_id and status queued",
        )),
        Err(_) => Err(unexpected("expected {\"message_id\", \"status\"}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_queued_answer_with_an_id_counts_as_accepted() {
        assert!(check_queued(br#"{"message_id": 17, "status": "queued"}"#).is_ok());
        assert!(check_queued(br#"{"message_id": 17, "status": "queued", "extra": 1}"#).is_ok());
        let f = check_queued(br#"{"message_id": 17, "status": "sent"}"#).unwrap_err();
        assert_eq!(f.kind(), "202 unexpected_body");
        assert!(check_queued(br#"{"status": "queued"}"#).is_err());
        assert!(check_queued(b"").is_err());
    }

    #[test]
    fn warm_up_requests_are_counted_apart_and_stay_out_of_the_histogram() {
        let mut s = Stats::default();
        let rate_limited = Failure::Status {
            status: 429,
            code: "rate_limited".to_owned(),
            message: "slow down".to_owned(),
        };
        s.record(false, Duration::from_millis(900), Ok(()));
        s.record(false, Duration::from_millis(1), Err(rate_limited.clone()));
        s.record(true, Duration::from_millis(2), Ok(()));
        s.record(true, Duration::from_millis(3), Err(rate_limited));
        assert_eq!((s.warmup_requests, s.warmup_errors), (2, 1));
        assert_eq!((s.requests, s.accepted, s.error_count()), (2, 1, 1));
        assert_eq!(s.latency_us.len(), 1);
        assert!(s.latency_us.max() < 2_100);
        assert_eq!(s.errors.get("429 rate_limited"), Some(&1));
        assert_eq!(
            s.examples.get("429 rate_limited").map(String::as_str),
            Some("HTTP 429 rate_limited: slow down")
        );
    }

    #[test]
    fn merging_adds_counts_errors_and_histograms() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        a.record(true, Duration::from_millis(1), Ok(()));
        b.record(true, Duration::from_millis(5), Ok(()));
        b.record(
            true,
            Duration::from_millis(5),
            Err(Failure::Transport {
                kind: "timeout",
                detail: "no answer".to_owned(),
            }),
        );
        a.merge(b);
        assert_eq!((a.requests, a.accepted), (3, 2));
        assert_eq!(a.errors.get("transport timeout"), Some(&1));
        assert_eq!(a.latency_us.len(), 2);
    }
}
