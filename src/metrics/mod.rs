//! The service's Prometheus registry and the metric families owned by the
//! HTTP layer; every other family (the database's, Telegram's, ...) is
//! defined by its module and registered here; the WebSocket gateway's
//! ([`ws`]) and the HealthMonitor's ([`health`]) are defined here too, below
//! the modules that use them. One registry per service
//! instance (no globals), so tests can run many instances in one process.

pub mod health;
pub mod ws;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// HTTP request latency buckets, in seconds (1 ms .. 10 s).
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Every metric family registered by the core of the service.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Requests by method, route pattern and status code.
    pub http_requests: IntCounterVec,
    /// Request latency by method and route pattern: arrival to answer, less
    /// the time spent waiting for the client's body.
    pub http_duration: HistogramVec,
    pub http_in_flight: IntGauge,
    /// Connections closed at once: their address held too many already.
    pub http_connections_refused: prometheus::IntCounter,
    pub db: crate::db::DbMetrics,
    pub telegram: crate::telegram::metrics::TelegramMetrics,
    pub rate_limits: crate::ratelimit::RateLimitMetrics,
    pub outbox: crate::outbox::OutboxMetrics,
    pub ws: ws::WsMetrics,
    pub uploads: crate::uploads::metrics::UploadMetrics,
    pub health: health::HealthMetrics,
    pub alerts: crate::alerts::AlertMetrics,
    pub events: crate::events::EventMetrics,
    /// Errors grouped by kind and shape (`GET /api/v1/errors`).
    pub errors: crate::errors::ErrorTracker,
}

impl Metrics {
    /// Create the registry, the core families and the process collector.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "tgvisor_http_requests_total",
                "HTTP requests by method, route pattern and status.",
            ),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "tgvisor_http_request_duration_seconds",
                "HTTP request latency by method and route pattern: arrival to answer, less the time spent waiting for the client's body.",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let http_in_flight = IntGauge::new(
            "tgvisor_http_requests_in_flight",
            "HTTP requests being served.",
        )?;
        let http_connections_refused = prometheus::IntCounter::new(
            "tgvisor_http_connections_refused_total",
            "Connections closed on arrival: their client address held server.max_connections_per_address already.",
        )?;
        let db = crate::db::DbMetrics::new(&registry)?;
        let build = IntGaugeVec::new(
            Opts::new("tgvisor_build_info", "Always 1; labels carry the build."),
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);

        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(http_in_flight.clone()))?;
        registry.register(Box::new(http_connections_refused.clone()))?;
        registry.register(Box::new(build))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let telegram = crate::telegram::metrics::TelegramMetrics::new(&registry)?;
        let rate_limits = crate::ratelimit::RateLimitMetrics::new(&registry)?;
        let outbox = crate::outbox::OutboxMetrics::new(&registry)?;
        let ws = ws::WsMetrics::new(&registry)?;
        let uploads = crate::uploads::metrics::UploadMetrics::new(&registry)?;
        let health = health::HealthMetrics::new(&registry)?;
        let alerts = crate::alerts::AlertMetrics::new(&registry)?;
        let events = crate::events::EventMetrics::new(&registry)?;
        let errors = crate::errors::ErrorTracker::new(&registry)?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            http_in_flight,
            http_connections_refused,
            db,
            telegram,
            rate_limits,
            outbox,
            ws,
            uploads,
            health,
            alerts,
            events,
            errors,
        })
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
