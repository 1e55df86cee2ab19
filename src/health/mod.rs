//! The HealthMonitor: what tgvisor knows about itself, judged by the
//! seed's thresholds (`thresholds.*` in the configuration).
//!
//! Components, each healthy, degraded or unhealthy:
//!
//! - `supervision`: the actor tree (an essential actor down, or more
//!   restarts in the window than `supervision.max_restarts`: degraded; the
//!   root gave up: unhealthy);
//! - `database`: a live ping (failed or timed out: unhealthy), the
//!   window's statements (p95 over `response_time.database.query_time_ms`,
//!   once there are `health.min_volume`: degraded) and the pool (fewer than
//!   `connection_pool.database.min_available` connections left: degraded);
//! - `websocket`: delivery latency, and the frames and connections the
//!   service failed, over the window (`thresholds.websocket`; what clients
//!   did to themselves is shown, not judged: [`crate::ws::health`]);
//! - `telegram`: send latency (p95), each DC's ping latency, FLOOD_WAITs in
//!   the last hour (`thresholds.telegram`), the share of messages that
//!   failed on the service's side (the network, timeouts, Telegram's 5xx:
//!   `error_rate.telegram.message_failure`; a message to a chat that does
//!   not exist is its sender's and only shown), accounts that need their
//!   owner;
//! - `rate_limits`: FLOOD_WAITs per hour, Telegram telling the service to
//!   slow down (`thresholds.telegram.flood_wait`); the limiter's refusals
//!   are shown, the accounts' pacing apart from the clients' own limits (a
//!   user over its API limit is that user's doing), and not judged;
//! - `api`: HTTP p95 / p99 / slowest (`response_time.api`) of the time the
//!   service spent (a client's slow body is the client's) and the share of
//!   5xx answers (`error_rate.api`), on API requests (not `/health*`, not
//!   `/metrics`);
//! - `resources`: memory, CPU and storage (`resource`).
//!
//! Figures over time ("the last five minutes") come from snapshots the
//! monitor actor takes every `health.sample_interval_ms`, kept for
//! `health.window_ms`. A share, mean or percentile is judged only once
//! `health.min_volume` events stand behind it (the DC pings excepted: an
//! account pings once per `telegram.health_check_interval_ms`, so a window
//! holds a few). Every check runs under `health.check_timeout_ms`: a
//! check that does not answer in time is unhealthy, and the endpoint still
//! answers.

pub mod monitor;
pub mod probes;
pub mod resources;
mod rules;
pub mod window;

pub use monitor::HealthMonitor;

use crate::config::Settings;
use crate::db::DbHealthState;
use crate::domain::Fault;
use crate::metrics::Metrics;
use crate::ratelimit::{Limit, RateLimiter};
use crate::supervisor::{RunState, SupervisionRuntime};
use crate::ws::health::WsHealth;
use resources::Resources;
use sea_orm::DatabaseConnection;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use window::{HistogramState, Window, counter_sum};

/// How a component is doing. Ordered: the worst of several is their max.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    Degraded,
    Unhealthy,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }

    /// The gauge value: 0 healthy, 1 degraded, 2 unhealthy.
    pub fn level(self) -> i64 {
        self as i64
    }

    /// `value` against a warning and a critical level (above is worse).
    pub fn of(value: f64, warning: f64, critical: f64) -> Self {
        if value > critical {
            Self::Unhealthy
        } else if value > warning {
            Self::Degraded
        } else {
            Self::Healthy
        }
    }
}

/// Every component, in the order reports list them (defined with the
/// `component` label of the status gauge, which has a series for each).
pub use crate::metrics::health::COMPONENTS;

/// The fingerprints of the seed's alertConfig rules ([`Health::rules`]).
pub const RULES: [&str; 3] = ["rule:errors", "rule:connections", "rule:performance"];

/// One component's verdict and the figures behind it.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub status: Status,
    /// Why it is not healthy, in words (the first threshold crossed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub detail: Value,
}

impl Check {
    fn new(detail: Value) -> Self {
        Self {
            status: Status::Healthy,
            reason: None,
            detail,
        }
    }

    /// Lowers the status to at least `status`, keeping the reason of the
    /// worst crossing.
    fn worsen(&mut self, status: Status, reason: impl FnOnce() -> String) {
        if status > self.status {
            self.status = status;
            self.reason = Some(reason());
        }
    }

    fn timed_out(after: Duration) -> Self {
        Self {
            status: Status::Unhealthy,
            reason: Some(format!(
                "the check did not answer within {} ms",
                after.as_millis()
            )),
            detail: json!({ "timed_out": true }),
        }
    }
}

/// Every component's check.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub status: Status,
    pub checks: BTreeMap<&'static str, Check>,
}

/// A snapshot of the cumulative figures the windowed checks compare.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    api: HistogramState,
    api_requests: u64,
    api_errors: u64,
    sends: HistogramState,
    dcs: BTreeMap<String, HistogramState>,
    migrations: u64,
    /// Messages sent.
    sent: u64,
    /// Messages failed, the service's (or Telegram's) fault.
    failed: u64,
    /// Messages failed, the sender's doing (a bad chat, a bad request).
    failed_client: u64,
    /// Limiter decisions and refusals on the accounts' sending (pacing and
    /// flood-wait blocks).
    account_decisions: u64,
    account_refused: u64,
    /// Limiter decisions and refusals on the clients' own limits.
    client_decisions: u64,
    client_refused: u64,
    cpu_seconds: Option<f64>,
    rss_bytes: Option<u64>,
    /// Database statements.
    queries: HistogramState,
    /// Actor restarts, every actor together.
    restarts: u64,
    /// WebSocket connections the service ended abnormally (not a client's
    /// own doing).
    ws_abnormal: u64,
    /// Telegram calls that failed on the network or timed out.
    tg_network: u64,
}

/// The figures one report judges: the live snapshot, the oldest one kept
/// and its age.
pub struct View {
    now: Sample,
    then: Sample,
    age: Duration,
}

/// What the checks read; cheap to clone.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Arc<Settings>,
    supervision: Arc<SupervisionRuntime>,
    db: DatabaseConnection,
    db_health: DbHealthState,
    ws: WsHealth,
    limiter: RateLimiter,
    metrics: Metrics,
    resources: Resources,
    window: Mutex<Window<Sample>>,
    started: tokio::time::Instant,
    /// The root supervisor, once it runs (the liveness probe asks it).
    root: std::sync::OnceLock<actix::Recipient<crate::supervisor::Ping>>,
    /// The shutdown began (readiness answers 503).
    shutting_down: std::sync::atomic::AtomicBool,
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

/// `part / whole`, 0 when there is no whole.
pub fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn ms(secs: Option<f64>) -> Option<f64> {
    secs.map(|s| (s * 1000.0 * 10.0).round() / 10.0)
}

impl Health {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: Arc<Settings>,
        supervision: Arc<SupervisionRuntime>,
        db: DatabaseConnection,
        db_health: DbHealthState,
        ws: WsHealth,
        limiter: RateLimiter,
        metrics: Metrics,
    ) -> Self {
        let window = Window::new(Duration::from_millis(settings.health.window_ms));
        let health = Self {
            inner: Arc::new(Inner {
                resources: Resources::new(settings.data_dir.clone()),
                settings,
                supervision,
                db,
                db_health,
                ws,
                limiter,
                metrics,
                window: Mutex::new(window),
                started: tokio::time::Instant::now(),
                root: std::sync::OnceLock::new(),
                shutting_down: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        health.sample();
        health
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Events a windowed figure needs before it is judged.
    fn min_volume(&self) -> u64 {
        self.inner.settings.health.min_volume
    }

    /// The window covers `health.window_ms`: windowed figures mean what
    /// they say.
    pub fn warmed_up(&self) -> bool {
        self.inner.started.elapsed() >= Duration::from_millis(self.inner.settings.health.window_ms)
    }

    fn take(&self) -> Sample {
        let m = &self.inner.metrics;
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
        let decisions = &self.inner.limiter.metrics().decisions;
        let usage = self.inner.resources.usage();
        Sample {
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
            restarts: self
                .inner
                .supervision
                .snapshot()
                .values()
                .map(|a| a.restarts)
                .sum(),
            ws_abnormal: counter_sum(&m.ws.disconnects, |l| {
                label(l, "fault") == Some(Fault::Server.as_str())
            }),
            tg_network: counter_sum(&m.telegram.requests, |l| {
                matches!(label(l, "result"), Some("network" | "timeout"))
            }),
        }
    }

    /// Records a snapshot for the windowed checks (the monitor calls this
    /// every sample interval); answers it.
    pub fn sample(&self) -> Sample {
        let now = self.take();
        self.inner
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(now.clone());
        now
    }

    /// `now` against the oldest snapshot kept: what the windowed checks of
    /// one report share.
    fn view(&self, now: Sample) -> Arc<View> {
        let (age, then) = self
            .inner
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .oldest()
            .unwrap_or_default();
        Arc::new(View { now, then, age })
    }

    /// Every check, each under the check timeout, run at once, on the
    /// live figures.
    pub async fn report(&self) -> Report {
        self.report_on(self.take()).await
    }

    /// Every check, on `now` (a snapshot just taken).
    pub async fn report_on(&self, now: Sample) -> Report {
        let view = self.view(now);
        let checks = futures_util::future::join_all(COMPONENTS.iter().map(|&name| {
            let view = view.clone();
            async move { (name, self.check_on(name, view).await) }
        }))
        .await;
        let checks: BTreeMap<_, _> = checks
            .into_iter()
            .filter_map(|(name, c)| c.map(|c| (name, c)))
            .collect();
        let status = checks
            .values()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Healthy);
        Report { status, checks }
    }

    /// One component's check (`None`: no such component), under the check
    /// timeout.
    pub async fn check(&self, component: &str) -> Option<Check> {
        self.check_on(component, self.view(self.take())).await
    }

    async fn check_on(&self, component: &str, v: Arc<View>) -> Option<Check> {
        let timeout = Duration::from_millis(self.inner.settings.health.check_timeout_ms);
        let check = async {
            Some(match component {
                "supervision" => self.supervision(&v),
                "database" => self.database(&v).await,
                "websocket" => self.websocket(),
                "telegram" => self.telegram(&v),
                "rate_limits" => self.rate_limits(&v),
                "api" => self.api(&v),
                "resources" => {
                    // statvfs and /proc reads block (an NFS data directory can
                    // hang): on a blocking thread, so the timeout holds.
                    let this = self.clone();
                    let v = v.clone();
                    match tokio::task::spawn_blocking(move || this.resources(&v)).await {
                        Ok(check) => check,
                        Err(_) => Check::timed_out(Duration::ZERO),
                    }
                }
                _ => return None,
            })
        };
        match tokio::time::timeout(timeout, check).await {
            Ok(c) => c,
            Err(_) => COMPONENTS
                .contains(&component)
                .then(|| Check::timed_out(timeout)),
        }
    }

    fn supervision(&self, v: &View) -> Check {
        let s = &self.inner.supervision;
        let tree = s.snapshot();
        let failure = s.root_failure();
        let down: Vec<&String> = tree
            .iter()
            .filter(|(_, a)| a.essential && a.state != RunState::Running)
            .map(|(path, _)| path)
            .collect();
        let (now, then, age) = (&v.now, &v.then, v.age);
        let restarts = now.restarts.saturating_sub(then.restarts);
        let mut check = Check::new(json!({
            "actors": tree.len(),
            "not_running": down,
            "failure": failure,
            "restarts": restarts,
            "window_secs": age.as_secs(),
        }));
        if let Some(f) = &failure {
            check.worsen(Status::Unhealthy, || format!("supervision gave up: {f}"));
        }
        if let Some(first) = down.first() {
            check.worsen(Status::Degraded, || format!("{first} is not running"));
        }
        // More restarts in the window than one supervisor tolerates in its
        // period: actors keep failing, even if each comes back.
        let storm = u64::from(self.inner.settings.supervision.max_restarts);
        if restarts > storm {
            check.worsen(Status::Degraded, || {
                format!("{restarts} actor restarts in the last {} s", age.as_secs())
            });
        }
        check
    }

    async fn database(&self, v: &View) -> Check {
        let inner = &self.inner;
        let t = &inner.settings.thresholds;
        let started = std::time::Instant::now();
        let ping = inner.db.ping().await;
        let latency = started.elapsed();
        let pool = crate::db::pool_stats(&inner.db);
        let max = inner.settings.database.max_connections;
        let available = max.saturating_sub(pool.size).saturating_add(pool.idle);
        let last = inner.db_health.get();
        let (now, then, age) = (&v.now, &v.then, v.age);
        let queries = now.queries.since(&then.queries);
        let p95 = queries.quantile(0.95);
        let mut check = Check::new(json!({
            "backend": crate::db::backend_name(&inner.db),
            "latency_ms": ms(Some(latency.as_secs_f64())),
            "pool": {
                "size": pool.size,
                "idle": pool.idle,
                "max": max,
                "available": available,
            },
            "checked_at": chrono::Utc::now(),
            "last_periodic_check": last.checked_at,
            "queries": {
                "count": queries.count,
                "p95_ms": ms(p95),
                "window_secs": age.as_secs(),
            },
        }));
        if ping.is_err() {
            check.worsen(Status::Unhealthy, || "the database did not answer".into());
        }
        // "Most queries complete within query_time_ms": judged on the
        // window's statements (one ping that had to open a connection says
        // little), once there are enough of them (health.min_volume) to
        // speak of "most".
        let slow = t.response_time.database.query_time_ms;
        if queries.count >= self.min_volume()
            && let Some(p95) = p95
            && p95 * 1000.0 > slow as f64
        {
            check.worsen(Status::Degraded, || {
                format!(
                    "query p95 {:.0} ms over {} s (over {slow} ms)",
                    p95 * 1000.0,
                    age.as_secs()
                )
            });
        }
        let min = t.connection_pool.database.min_available;
        if available < min {
            check.worsen(Status::Degraded, || {
                format!("{available} pool connections left (fewer than {min})")
            });
        }
        check
    }

    fn websocket(&self) -> Check {
        let t = &self.inner.settings.thresholds.websocket;
        let (status, figures) = self.inner.ws.check(t, self.min_volume());
        let mut check = Check::new(serde_json::to_value(&figures).unwrap_or(Value::Null));
        check.worsen(status, || {
            format!(
                "latency {:.0} ms, error rate {:.3}, reconnect rate {:.3} over {} s",
                figures.average_latency_ms,
                figures.error_rate,
                figures.reconnect_rate,
                figures.window_secs
            )
        });
        check
    }

    fn telegram(&self, v: &View) -> Check {
        let inner = &self.inner;
        let t = &inner.settings.thresholds;
        let (now, then, age) = (&v.now, &v.then, v.age);
        let sends = now.sends.since(&then.sends);
        let p95 = sends.quantile(0.95);
        let dcs: BTreeMap<&String, Option<f64>> = now
            .dcs
            .iter()
            .map(|(dc, h)| {
                let before = then.dcs.get(dc).cloned().unwrap_or_default();
                (dc, ms(h.since(&before).mean()))
            })
            .collect();
        let floods = inner.limiter.flood_waits_last_hour();
        let sent = now.sent.saturating_sub(then.sent);
        let failed = now.failed.saturating_sub(then.failed);
        let failed_client = now.failed_client.saturating_sub(then.failed_client);
        // Of every message that left the outbox, those the service failed:
        // a message to a chat that does not exist is its sender's doing.
        let failure_rate = ratio(failed, sent + failed + failed_client);
        let mut accounts = BTreeMap::new();
        for family in prometheus::core::Collector::collect(&inner.metrics.telegram.accounts) {
            for m in family.get_metric() {
                let n = m.get_gauge().get_value() as i64;
                if n > 0
                    && let Some(state) = m.get_label().first()
                {
                    accounts.insert(state.value().to_owned(), n);
                }
            }
        }
        let attention: i64 = [
            "unauthorized",
            "revoked",
            "banned",
            "duplicate_key",
            "failed",
        ]
        .iter()
        .filter_map(|s| accounts.get(*s))
        .sum();
        let mut check = Check::new(json!({
            "message_latency_ms": {
                "mean": ms(sends.mean()),
                "p95": ms(p95),
                "sends": sends.count,
            },
            "dc_latency_ms": dcs,
            "flood_waits_last_hour": floods,
            "migrations": now.migrations.saturating_sub(then.migrations),
            "messages": {
                "sent": sent,
                "failed": failed,
                "failed_by_request": failed_client,
            },
            "message_failure_rate": failure_rate,
            "accounts": accounts,
            "window_secs": age.as_secs(),
        }));
        let enough = self.min_volume();
        let lat = &t.telegram.message_latency;
        if let Some(p95) = p95.filter(|_| sends.count >= enough) {
            let p95_ms = p95 * 1000.0;
            check.worsen(
                Status::of(p95_ms, lat.warning_ms as f64, lat.critical_ms as f64),
                || format!("message latency p95 {p95_ms:.0} ms"),
            );
        }
        let dc = &t.telegram.dc_latency;
        for (id, mean) in &dcs {
            if let Some(mean) = mean {
                check.worsen(
                    Status::of(*mean, dc.warning_ms as f64, dc.critical_ms as f64),
                    || format!("DC {id} latency {mean:.0} ms"),
                );
            }
        }
        let fw = &t.telegram.flood_wait;
        check.worsen(Status::of(floods as f64, fw.warning, fw.critical), || {
            format!("{floods} FLOOD_WAITs in the last hour")
        });
        let limit = t.error_rate.telegram.message_failure;
        if failure_rate > limit && sent + failed + failed_client >= enough {
            check.worsen(Status::Degraded, || {
                format!("{:.1} % of messages failed", failure_rate * 100.0)
            });
        }
        if attention > 0 {
            check.worsen(Status::Degraded, || {
                format!("{attention} accounts need their owner")
            });
        }
        check
    }

    fn rate_limits(&self, v: &View) -> Check {
        let inner = &self.inner;
        let (now, then, age) = (&v.now, &v.then, v.age);
        let side = |decisions: u64, refused: u64| {
            json!({
                "decisions": decisions,
                "refused": refused,
                "refused_share": ratio(refused, decisions),
            })
        };
        let floods = inner.limiter.flood_waits_last_hour();
        let blocked = inner.limiter.blocked_keys();
        let mut check = Check::new(json!({
            "flood_waits_last_hour": floods,
            "blocked_keys": blocked,
            "accounts": side(
                now.account_decisions.saturating_sub(then.account_decisions),
                now.account_refused.saturating_sub(then.account_refused),
            ),
            "clients": side(
                now.client_decisions.saturating_sub(then.client_decisions),
                now.client_refused.saturating_sub(then.client_refused),
            ),
            "window_secs": age.as_secs(),
        }));
        // Telegram telling the service to slow down is the verdict. The
        // limiter refusing a client over its own limit is that limit
        // working; pacing the accounts is the outbox's job (a backlog has
        // its own alerts).
        let fw = &inner.settings.thresholds.telegram.flood_wait;
        check.worsen(Status::of(floods as f64, fw.warning, fw.critical), || {
            format!("{floods} FLOOD_WAITs in the last hour")
        });
        check
    }

    fn api(&self, v: &View) -> Check {
        let t = &self.inner.settings.thresholds;
        let (now, then, age) = (&v.now, &v.then, v.age);
        let d = now.api.since(&then.api);
        let requests = now.api_requests.saturating_sub(then.api_requests);
        let errors = now.api_errors.saturating_sub(then.api_errors);
        let error_rate = ratio(errors, requests);
        let (p95, p99, max) = (d.quantile(0.95), d.quantile(0.99), d.max_bound());
        let mut check = Check::new(json!({
            "requests": requests,
            "p95_ms": ms(p95),
            "p99_ms": ms(p99),
            "slowest_at_most_ms": ms(max),
            "error_rate": error_rate,
            "window_secs": age.as_secs(),
        }));
        let rt = &t.response_time.api;
        // Percentiles and shares of a handful of requests are anecdotes.
        let enough = d.count >= self.min_volume();
        let over =
            |v: Option<f64>, limit: u64| enough && v.is_some_and(|s| s * 1000.0 > limit as f64);
        if over(p95, rt.p95_ms) {
            check.worsen(Status::Degraded, || format!("p95 over {} ms", rt.p95_ms));
        }
        if over(p99, rt.p99_ms) {
            check.worsen(Status::Degraded, || format!("p99 over {} ms", rt.p99_ms));
        }
        // The histogram knows only that the slowest fell in a bucket: its
        // lower edge has to be past the limit to say the limit was crossed.
        if enough
            && d.slowest_at_least()
                .is_some_and(|s| s * 1000.0 > rt.max_ms as f64)
        {
            check.worsen(Status::Degraded, || {
                format!("a request took over {} ms", rt.max_ms)
            });
        }
        let er = &t.error_rate.api;
        if requests >= self.min_volume() {
            check.worsen(Status::of(error_rate, er.warning, er.critical), || {
                format!("{:.1} % of answers were 5xx", error_rate * 100.0)
            });
        }
        check
    }

    fn resources(&self, v: &View) -> Check {
        let inner = &self.inner;
        let r = &inner.settings.thresholds.resource;
        let limit = inner.resources.memory_limit();
        let memory = match (v.now.rss_bytes, limit) {
            (Some(rss), Some(l)) if l > 0 => Some(rss as f64 / l as f64),
            _ => None,
        };
        let (now, then, age) = (&v.now, &v.then, v.age);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Over less than a sample interval (just after start), a burst of
        // start-up work would read as a busy machine: no figure yet.
        let min_age = Duration::from_millis(inner.settings.health.sample_interval_ms);
        let cpu = match (now.cpu_seconds, then.cpu_seconds) {
            (Some(a), Some(b)) if age >= min_age && !age.is_zero() => {
                Some((a - b).max(0.0) / age.as_secs_f64() / cores as f64)
            }
            _ => None,
        };
        let storage = inner.resources.storage();
        let storage_usage = storage.map(|(used, total)| ratio(used, total));
        let mut check = Check::new(json!({
            "memory": {
                "rss_bytes": v.now.rss_bytes,
                "limit_bytes": limit,
                "usage": memory,
            },
            "cpu": { "usage": cpu, "cores": cores, "window_secs": age.as_secs() },
            "storage": {
                "used_bytes": storage.map(|s| s.0),
                "total_bytes": storage.map(|s| s.1),
                "usage": storage_usage,
            },
        }));
        for (name, value, levels) in [
            ("memory", memory, &r.memory),
            ("cpu", cpu, &r.cpu),
            ("storage", storage_usage, &r.storage),
        ] {
            if let Some(v) = value {
                check.worsen(Status::of(v, levels.warning, levels.critical), || {
                    format!("{name} at {:.0} %", v * 100.0)
                });
            }
        }
        check
    }
}
