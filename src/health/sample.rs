//! The snapshot of cumulative figures the windowed checks compare
//! ([`Sample`]), and what one report judges ([`View`]).

use super::figures::{HistogramState, counter_sum};
use super::resources::Resources;
use crate::domain::Fault;
use crate::metrics::Metrics;
use crate::ratelimit::{Limit, RateLimiter};
use crate::supervisor::SupervisionRuntime;
use std::collections::BTreeMap;
use std::time::Duration;

/// A snapshot of the cumulative figures the windowed checks compare.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub(super) api: HistogramState,
    pub(super) api_requests: u64,
    pub(super) api_errors: u64,
    pub(super) sends: HistogramState,
    pub(super) dcs: BTreeMap<String, HistogramState>,
    pub(super) migrations: u64,
    /// Messages sent.
    pub(super) sent: u64,
    /// Messages failed, the service's (or Telegram's) fault.
    pub(super) failed: u64,
    /// Messages failed, the sender's doing (a bad chat, a bad request).
    pub(super) failed_client: u64,
    /// Limiter decisions and refusals on the accounts' sending (pacing and
    /// flood-wait blocks).
    pub(super) account_decisions: u64,
    pub(super) account_refused: u64,
    /// Limiter decisions and refusals on the clients' own limits.
    pub(super) client_decisions: u64,
    pub(super) client_refused: u64,
    pub(super) cpu_seconds: Option<f64>,
    pub(super) rss_bytes: Option<u64>,
    /// Database statements.
    pub(super) queries: HistogramState,
    /// Actor restarts, every actor together.
    pub(super) restarts: u64,
    /// WebSocket connections the service ended abnormally (not a client's
    /// own doing).
    pub(super) ws_abnormal: u64,
    /// Telegram calls that failed on the network or timed out.
    pub(super) tg_network: u64,
}

/// The figures one report judges: the live snapshot, the oldest one kept
/// and its age.
pub struct View {
    pub(super) now: Sample,
    pub(super) then: Sample,
    pub(super) age: Duration,
}

/// Telegram methods whose latency is "message latency".
fn is_send(method: &str) -> bool {
    method.starts_with("messages.send")
}

fn label<'a>(labels: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    labels.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// A limiter decision on one of the clients' own limits.
fn clients_own(labels: &[(&str, &str)]) -> bool {
    let own = |l: &Limit| Some(l.as_str()) == label(labels, "limit") && l.is_clients_own();
    Limit::ALL.iter().any(own)
}

/// A limiter decision that refused.
fn refused(labels: &[(&str, &str)]) -> bool {
    matches!(label(labels, "result"), Some("throttled" | "blocked"))
}

impl Sample {
    /// The cumulative figures now.
    pub(super) fn take(
        m: &Metrics,
        limiter: &RateLimiter,
        resources: &Resources,
        supervision: &SupervisionRuntime,
    ) -> Self {
        // As the Prometheus rules count them: health answers (503 by
        // design) and scrapes are not API traffic, and an upload lasts as
        // long as its file takes to arrive.
        let api_route = |l: &[(&str, &str)]| {
            label(l, "route").is_none_or(|r| !r.starts_with("/health") && r != "/metrics")
        };
        let api_requests = counter_sum(&m.http_requests, api_route);
        let api_errors = counter_sum(&m.http_requests, |l| {
            api_route(l) && label(l, "status").is_some_and(|s| s.starts_with('5'))
        });
        let decisions = &limiter.metrics().decisions;
        let usage = resources.usage();
        Self {
            // The time the service spent (less a client's slow body: see
            // http::body_wait) on API requests.
            api: HistogramState::of(&m.http_duration, |l| {
                api_route(l) && label(l, "route").is_none_or(|r| !r.ends_with("/uploads"))
            }),
            api_requests,
            api_errors,
            sends: HistogramState::of(&m.telegram.duration, |l| {
                label(l, "method").is_some_and(is_send)
            }),
            dcs: HistogramState::by_label(&m.telegram.dc_latency, "dc"),
            migrations: m.telegram.migrations.get(),
            sent: counter_sum(&m.outbox.finished, |l| label(l, "status") == Some("sent")),
            failed: counter_sum(&m.outbox.failures, |l| {
                label(l, "fault") == Some(Fault::Server.as_str())
            }),
            failed_client: counter_sum(&m.outbox.failures, |l| {
                label(l, "fault") == Some(Fault::Client.as_str())
            }),
            account_decisions: counter_sum(decisions, |l| !clients_own(l)),
            account_refused: counter_sum(decisions, |l| !clients_own(l) && refused(l)),
            client_decisions: counter_sum(decisions, clients_own),
            client_refused: counter_sum(decisions, |l| clients_own(l) && refused(l)),
            cpu_seconds: usage.cpu_seconds,
            rss_bytes: usage.rss_bytes,
            queries: HistogramState::of(&m.db.query_duration, |_| true),
            restarts: supervision.snapshot().values().map(|a| a.restarts).sum(),
            ws_abnormal: counter_sum(&m.ws.disconnects, |l| {
                label(l, "fault") == Some(Fault::Server.as_str())
            }),
            tg_network: counter_sum(&m.telegram.requests, |l| {
                matches!(label(l, "result"), Some("network" | "timeout"))
            }),
        }
    }
}
