//! The HealthMonitor's metric families: each component's status and the
//! reports judged.

use prometheus::{IntCounter, IntGaugeVec, Opts, Registry};

/// Every health component (the `component` label), in the order
/// reports list them; `crate::health` re-exports it.
pub const COMPONENTS: [&str; 7] = [
    "supervision",
    "database",
    "websocket",
    "telegram",
    "rate_limits",
    "api",
    "resources",
];

/// `tgvisor_health_status{component}`: 0 healthy, 1 degraded, 2 unhealthy;
/// `tgvisor_health_reports_total`: reports judged.
#[derive(Clone)]
pub struct HealthMetrics {
    pub status: IntGaugeVec,
    /// Reports judged (every status set, every alert raised or resolved):
    /// flat means nothing is watching the service.
    pub reports: IntCounter,
}

impl HealthMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let status = IntGaugeVec::new(
            Opts::new(
                "tgvisor_health_status",
                "Each component's health: 0 healthy, 1 degraded, 2 unhealthy.",
            ),
            &["component"],
        )?;
        let reports = IntCounter::new(
            "tgvisor_health_reports_total",
            "Health reports the HealthMonitor judged (statuses set, alerts raised or resolved).",
        )?;
        registry.register(Box::new(status.clone()))?;
        registry.register(Box::new(reports.clone()))?;
        for c in COMPONENTS {
            status.with_label_values(&[c]).set(0);
        }
        Ok(Self { status, reports })
    }
}
