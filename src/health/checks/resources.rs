//! The `resources` check: memory, CPU and storage against
//! `thresholds.resource`.

use crate::health::figures::ratio;
use crate::health::handle::Health;
use crate::health::sample::View;
use crate::health::status::{Check, Status};
use serde_json::json;

pub(super) fn check(h: &Health, v: &View) -> Check {
    let inner = &h.inner;
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
    let min_age = inner.settings.health.sample_interval_ms;
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
