//! Rate-limit metric families. Labels are bounded: the limit's name and the
//! decision's result, never an account, chat or user id.

use super::Limit;
use prometheus::{CounterVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use std::time::Duration;

/// The outcome of one decision on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over the configured rate.
    Throttled,
    /// Refused by a flood-wait block.
    Blocked,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Throttled => "throttled",
            Decision::Blocked => "blocked",
        }
    }

    const ALL: [Decision; 3] = [Decision::Allowed, Decision::Throttled, Decision::Blocked];
}

/// Every rate-limit metric family.
#[derive(Clone)]
pub struct RateLimitMetrics {
    /// Decisions by limit and result (allowed, throttled, blocked).
    pub decisions: IntCounterVec,
    /// Seconds spent waiting for a limit, by limit.
    pub wait_seconds: CounterVec,
    /// Flood-wait blocks applied, by limit.
    pub blocks: IntCounterVec,
    /// Keys blocked by a flood wait at the last sweep, by limit.
    pub blocked_keys: IntGaugeVec,
}

impl RateLimitMetrics {
    /// Creates the families, registers them in `registry` and starts every
    /// series at zero (so rates and ratios exist before the first event).
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let decisions = IntCounterVec::new(
            Opts::new(
                "tgvisor_rate_limit_decisions_total",
                "Rate-limit decisions by limit and result (allowed, throttled, blocked).",
            ),
            &["limit", "result"],
        )?;
        let wait_seconds = CounterVec::new(
            Opts::new(
                "tgvisor_rate_limit_wait_seconds_total",
                "Seconds spent waiting for a rate limit, by limit.",
            ),
            &["limit"],
        )?;
        let blocks = IntCounterVec::new(
            Opts::new(
                "tgvisor_rate_limit_blocks_total",
                "Flood-wait blocks applied to rate-limit keys, by limit.",
            ),
            &["limit"],
        )?;
        let blocked_keys = IntGaugeVec::new(
            Opts::new(
                "tgvisor_rate_limit_blocked_keys",
                "Rate-limit keys under a flood-wait block at the last sweep, by limit.",
            ),
            &["limit"],
        )?;
        for limit in Limit::ALL {
            let l = limit.as_str();
            for d in Decision::ALL {
                decisions.with_label_values(&[l, d.as_str()]);
            }
            wait_seconds.with_label_values(&[l]);
            blocks.with_label_values(&[l]);
            blocked_keys.with_label_values(&[l]);
        }
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(wait_seconds.clone()))?;
        registry.register(Box::new(blocks.clone()))?;
        registry.register(Box::new(blocked_keys.clone()))?;
        Ok(Self {
            decisions,
            wait_seconds,
            blocks,
            blocked_keys,
        })
    }

    /// Records time actually spent waiting for `limit`.
    pub fn observe_wait(&self, limit: Limit, wait: Duration) {
        if !wait.is_zero() {
            self.wait_seconds
                .with_label_values(&[limit.as_str()])
                .inc_by(wait.as_secs_f64());
        }
    }

    pub(super) fn decision(&self, limit: Limit, decision: Decision) {
        self.decisions
            .with_label_values(&[limit.as_str(), decision.as_str()])
            .inc();
    }
}
