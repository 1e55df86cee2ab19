//! A component's verdict ([`Status`], [`Check`]) and every component's
//! together ([`Report`]).

use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

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
    pub(super) fn new(detail: Value) -> Self {
        Self {
            status: Status::Healthy,
            reason: None,
            detail,
        }
    }

    /// Lowers the status to at least `status`, keeping the reason of the
    /// worst crossing.
    pub(super) fn worsen(&mut self, status: Status, reason: impl FnOnce() -> String) {
        if status > self.status {
            self.status = status;
            self.reason = Some(reason());
        }
    }

    pub(super) fn timed_out(after: Duration) -> Self {
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
