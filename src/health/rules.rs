//! The alert rules (`alerting.rules`), judged by the HealthMonitor at every
//! sample on the same snapshot as the checks: a burst of tracked errors,
//! connections the service lost, a slow API.

use super::RULES;
use super::handle::Health;
use super::sample::Sample;
use std::sync::PoisonError;
use std::time::Duration;

impl Health {
    /// The alert rules (`alerting.rules`), evaluated now: for each rule, its
    /// fingerprint and the alert to raise, or `None` (resolve it).
    pub fn rules(&self, now: &Sample) -> Vec<(&'static str, Option<crate::alerts::NewAlert>)> {
        use crate::alerts::{NewAlert, Severity};
        let r = &self.inner.settings.alerting.rules;
        let severity = |action: &str| match action {
            "escalate" => Severity::High,
            "notify" => Severity::Medium,
            _ => Severity::Low,
        };
        let over = |period: Duration| {
            let then = self
                .inner
                .window
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .at_least(period)
                .map(|(_, s)| s)
                .unwrap_or_default();
            (then, period)
        };
        let alert = |name: &str, action: &str, summary: String| NewAlert {
            fingerprint: format!("rule:{name}"),
            name: name.to_owned(),
            severity: severity(action),
            summary,
            labels: [("rule".to_owned(), name.to_owned())].into(),
        };
        let mut out = Vec::new();
        // errors: this many tracked errors (5xx, failing actors) in the period.
        let e = &r.errors;
        let errors = self.inner.metrics.errors.count_since(e.period_ms);
        out.push((
            RULES[0],
            (errors >= e.threshold as usize).then(|| {
                alert(
                    "error_burst",
                    &e.action,
                    format!(
                        "{errors} errors in the last {} s (GET /api/v1/errors)",
                        e.period_ms.as_secs()
                    ),
                )
            }),
        ));
        // connections: WebSocket connections the service ended abnormally
        // (a client's own mistakes and goings are not the service's) and
        // Telegram calls lost to the network, in the period.
        let c = &r.connections;
        let (then, period) = over(c.period_ms);
        let lost = now.ws_abnormal.saturating_sub(then.ws_abnormal)
            + now.tg_network.saturating_sub(then.tg_network);
        out.push((
            RULES[1],
            (lost >= u64::from(c.threshold)).then(|| {
                alert(
                    "connection_failures",
                    &c.action,
                    format!("{lost} connections lost in the last {} s", period.as_secs()),
                )
            }),
        ));
        // performance: API p95 over the threshold across the period.
        let p = &r.performance;
        let threshold_ms = p.threshold_ms.as_millis();
        let (then, period) = over(p.period_ms);
        let api = now.api.since(&then.api);
        let p95 = api
            .quantile(0.95)
            .filter(|_| api.count >= self.min_volume());
        out.push((
            RULES[2],
            p95.filter(|s| s * 1000.0 > threshold_ms as f64).map(|s| {
                alert(
                    "slow_responses",
                    &p.action,
                    format!(
                        "API p95 {:.0} ms over the last {} s (over {} ms)",
                        s * 1000.0,
                        period.as_secs(),
                        threshold_ms
                    ),
                )
            }),
        ));
        out
    }
}
