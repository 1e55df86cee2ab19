//! The database's metric families: pool occupancy and health (sampled by
//! the [`super::actor::DatabaseActor`]) and statement latency (timed by
//! [`super::observe_queries`]).

use super::OPERATIONS;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Database pool and health metrics, sampled by the Database actor.
#[derive(Clone)]
pub struct DbMetrics {
    /// 1 when the last health check reached the database.
    pub up: IntGauge,
    /// Round-trip time of the health-check ping.
    pub ping_duration: Histogram,
    /// Pool connections by state (idle, in_use).
    pub pool_connections: IntGaugeVec,
    /// The configured maximum pool size.
    pub pool_max: IntGauge,
    /// Statement latency by operation (select, insert, update, delete,
    /// other).
    pub query_duration: HistogramVec,
    /// Statements slower than `thresholds.slow_query.log_ms`, by operation.
    pub slow_queries: IntCounterVec,
}

impl DbMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            up: IntGauge::new(
                "tgvisor_db_up",
                "1 when the last database health check succeeded.",
            )?,
            ping_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "tgvisor_db_ping_duration_seconds",
                    "Database health-check round trip.",
                )
                .buckets(vec![0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0]),
            )?,
            pool_connections: IntGaugeVec::new(
                Opts::new(
                    "tgvisor_db_pool_connections",
                    "Database pool connections by state.",
                ),
                &["state"],
            )?,
            pool_max: IntGauge::new(
                "tgvisor_db_pool_max_connections",
                "Configured maximum database pool size.",
            )?,
            query_duration: HistogramVec::new(
                HistogramOpts::new(
                    "tgvisor_db_query_duration_seconds",
                    "Database statement latency by operation.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5,
                ]),
                &["operation"],
            )?,
            slow_queries: IntCounterVec::new(
                Opts::new(
                    "tgvisor_db_slow_queries_total",
                    "Statements slower than thresholds.slow_query.log_ms, by operation.",
                ),
                &["operation"],
            )?,
        };
        for op in OPERATIONS {
            m.query_duration.with_label_values(&[op]);
            m.slow_queries.with_label_values(&[op]);
        }
        registry.register(Box::new(m.up.clone()))?;
        registry.register(Box::new(m.ping_duration.clone()))?;
        registry.register(Box::new(m.pool_connections.clone()))?;
        registry.register(Box::new(m.pool_max.clone()))?;
        registry.register(Box::new(m.query_duration.clone()))?;
        registry.register(Box::new(m.slow_queries.clone()))?;
        Ok(m)
    }
}
