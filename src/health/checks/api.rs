//! The `api` check: HTTP p95 / p99 / slowest and the share of 5xx
//! answers on API requests over the window.

use crate::health::figures::{ms, ratio};
use crate::health::handle::Health;
use crate::health::sample::View;
use crate::health::status::{Check, Status};
use serde_json::json;
use std::time::Duration;

pub(super) fn check(h: &Health, v: &View) -> Check {
    let t = &h.inner.settings.thresholds;
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
    let enough = d.count >= h.min_volume();
    let over = |v: Option<f64>, limit: Duration| {
        enough && v.is_some_and(|s| s * 1000.0 > limit.as_millis() as f64)
    };
    if over(p95, rt.p95_ms) {
        check.worsen(Status::Degraded, || {
            format!("p95 over {} ms", rt.p95_ms.as_millis())
        });
    }
    if over(p99, rt.p99_ms) {
        check.worsen(Status::Degraded, || {
            format!("p99 over {} ms", rt.p99_ms.as_millis())
        });
    }
    // The histogram knows only that the slowest fell in a bucket: its
    // lower edge has to be past the limit to say the limit was crossed.
    if enough
        && d.slowest_at_least()
            .is_some_and(|s| s * 1000.0 > rt.max_ms.as_millis() as f64)
    {
        check.worsen(Status::Degraded, || {
            format!("a request took over {} ms", rt.max_ms.as_millis())
        });
    }
    let er = &t.error_rate.api;
    if requests >= h.min_volume() {
        check.worsen(Status::of(error_rate, er.warning, er.critical), || {
            format!("{:.1} % of answers were 5xx", error_rate * 100.0)
        });
    }
    check
}
