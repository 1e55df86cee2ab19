//! The `telegram` check: send latency, each DC's latency, FLOOD_WAITs,
//! the share of messages the service failed, accounts that need their
//! owner.

use crate::health::figures::{ms, ratio};
use crate::health::handle::Health;
use crate::health::sample::View;
use crate::health::status::{Check, Status};
use serde_json::json;
use std::collections::BTreeMap;

pub(super) fn check(h: &Health, v: &View) -> Check {
    let inner = &h.inner;
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
    let enough = h.min_volume();
    let lat = &t.telegram.message_latency;
    if let Some(p95) = p95.filter(|_| sends.count >= enough) {
        let p95_ms = p95 * 1000.0;
        check.worsen(
            Status::of(
                p95_ms,
                lat.warning_ms.as_millis() as f64,
                lat.critical_ms.as_millis() as f64,
            ),
            || format!("message latency p95 {p95_ms:.0} ms"),
        );
    }
    let dc = &t.telegram.dc_latency;
    for (id, mean) in &dcs {
        if let Some(mean) = mean {
            check.worsen(
                Status::of(
                    *mean,
                    dc.warning_ms.as_millis() as f64,
                    dc.critical_ms.as_millis() as f64,
                ),
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
