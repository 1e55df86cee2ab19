//! The `database` check: a live ping, the window's statement latency
//! (p95) and the pool's free connections.

use crate::health::figures::ms;
use crate::health::handle::Health;
use crate::health::sample::View;
use crate::health::status::{Check, Status};
use serde_json::json;

pub(super) async fn check(h: &Health, v: &View) -> Check {
    let inner = &h.inner;
    let t = &inner.settings.thresholds;
    let started = std::time::Instant::now();
    let ping = inner.db.ping().await;
    let latency = started.elapsed();
    let pool = crate::db::pool_stats(&inner.db);
    let max = inner.settings.database.max_connections;
    let available = max.saturating_sub(pool.size).saturating_add(pool.idle);
    let last = inner.db_health.get();
    let (now, then, age) = (&v.now, &v.then, v.age);
    let queries = now.queries.since(&then.queries);
    let p95 = queries.quantile(0.95);
    let mut check = Check::new(json!({
        "backend": crate::db::backend_name(&inner.db),
        "latency_ms": ms(Some(latency.as_secs_f64())),
        "pool": {
            "size": pool.size,
            "idle": pool.idle,
            "max": max,
            "available": available,
        },
        "checked_at": chrono::Utc::now(),
        "last_periodic_check": last.checked_at,
        "queries": {
            "count": queries.count,
            "p95_ms": ms(p95),
            "window_secs": age.as_secs(),
        },
    }));
    if ping.is_err() {
        check.worsen(Status::Unhealthy, || "the database did not answer".into());
    }
    // "Most queries complete within query_time_ms": judged on the
    // window's statements (one ping that had to open a connection says
    // little), once there are enough of them (health.min_volume) to
    // speak of "most".
    let slow = t.response_time.database.query_time_ms.as_millis();
    if queries.count >= h.min_volume()
        && let Some(p95) = p95
        && p95 * 1000.0 > slow as f64
    {
        check.worsen(Status::Degraded, || {
            format!(
                "query p95 {:.0} ms over {} s (over {slow} ms)",
                p95 * 1000.0,
                age.as_secs()
            )
        });
    }
    let min = t.connection_pool.database.min_available;
    if available < min {
        check.worsen(Status::Degraded, || {
            format!("{available} pool connections left (fewer than {min})")
        });
    }
    check
}
