//! The HealthMonitor actor: samples the windowed figures every
//! `health.sample_interval_ms`, runs every check, publishes each
//! component's status as `tgvisor_health_status{component}`, and reports
//! each change of a component's status to the alert router (a component
//! that leaves `healthy` raises an alert; coming back resolves it).

use super::RULES;
use super::handle::Health;
use super::sample::Sample;
use super::status::{Report, Status};
use crate::alerts::{AlertRouterHandle, NewAlert, Severity};
use crate::metrics::health::HealthMetrics;
use actix::prelude::*;
use std::collections::HashMap;
use std::time::Duration;

pub struct HealthMonitor {
    health: Health,
    metrics: HealthMetrics,
    alerts: AlertRouterHandle,
    every: Duration,
    /// Each component's status at the last sample.
    last: HashMap<&'static str, Status>,
    /// The alertConfig rules raised and not resolved since.
    raised_rules: std::collections::HashSet<&'static str>,
    /// A report is being made: a tick does not start another (reports
    /// judged out of order would flap alerts).
    reporting: bool,
}

/// Components judged on the moment, not on a window: their recovery can be
/// told at once after a start.
const INSTANT: [&str; 2] = ["supervision", "database"];

impl HealthMonitor {
    pub fn new(health: Health, metrics: HealthMetrics, alerts: AlertRouterHandle) -> Self {
        let every = health.settings().health.sample_interval_ms;
        Self {
            health,
            metrics,
            alerts,
            every,
            last: HashMap::new(),
            // As if all had been raised: the first pass after a start
            // resolves what the router may still hold from before.
            raised_rules: RULES.into(),
            reporting: false,
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = self.health.sample();
        if self.reporting {
            return;
        }
        self.reporting = true;
        let health = self.health.clone();
        ctx.spawn(
            async move {
                let report = health.report_on(now.clone()).await;
                (report, now)
            }
            .into_actor(self)
            .map(|(report, now), act, _| {
                act.reporting = false;
                act.judge(&report, &now);
                // After every raise and resolve of this report is queued.
                act.metrics.reports.inc();
            }),
        );
    }

    fn judge(&mut self, report: &Report, now: &Sample) {
        // Until the window covers health.window_ms after a start, "fine"
        // only means "no figures yet": nothing windowed is resolved (a
        // restart must not resolve, then page again, what still holds).
        let warm = self.health.warmed_up();
        for (fingerprint, alert) in self.health.rules(now) {
            match alert {
                Some(a) => self.alerts.raise(a),
                None if !warm => continue,
                None => {
                    // Only what this monitor raised needs resolving.
                    if self.raised_rules.remove(fingerprint) {
                        self.alerts.resolve(fingerprint);
                    }
                    continue;
                }
            }
            self.raised_rules.insert(fingerprint);
        }
        for (&component, check) in &report.checks {
            self.metrics
                .status
                .with_label_values(&[component])
                .set(check.status.level());
            if check.status == Status::Healthy && !warm && !INSTANT.contains(&component) {
                continue;
            }
            // The first report after a (re)start says everything: the
            // router ignores a raise of what already fires and a resolve of
            // what does not.
            if self.last.insert(component, check.status) == Some(check.status) {
                continue;
            }
            let fingerprint = format!("health:{component}");
            match check.status {
                Status::Healthy => {
                    tracing::info!(component, "component healthy again");
                    self.alerts.resolve(&fingerprint);
                }
                status => {
                    let reason = check.reason.clone().unwrap_or_default();
                    tracing::warn!(component, status = status.as_str(), %reason, "component not healthy");
                    self.alerts.raise(NewAlert {
                        fingerprint,
                        name: format!("{component}_{}", status.as_str()),
                        severity: if status == Status::Unhealthy {
                            Severity::High
                        } else {
                            Severity::Medium
                        },
                        summary: format!("{component} is {}: {reason}", status.as_str()),
                        labels: [("component".to_owned(), component.to_owned())].into(),
                    });
                }
            }
        }
    }
}

impl Actor for HealthMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.tick(ctx);
        ctx.run_interval(self.every, |act, ctx| act.tick(ctx));
    }
}
