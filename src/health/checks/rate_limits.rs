//! The `rate_limits` check: FLOOD_WAITs per hour judged; the limiter's
//! refusals (the accounts' pacing, the clients' own limits) shown.

use crate::health::figures::ratio;
use crate::health::handle::Health;
use crate::health::sample::View;
use crate::health::status::{Check, Status};
use serde_json::json;

pub(super) fn check(h: &Health, v: &View) -> Check {
    let inner = &h.inner;
    let (now, then, age) = (&v.now, &v.then, v.age);
    let side = |decisions: u64, refused: u64| {
        json!({
            "decisions": decisions,
            "refused": refused,
            "refused_share": ratio(refused, decisions),
        })
    };
    let floods = inner.limiter.flood_waits_last_hour();
    let blocked = inner.limiter.blocked_keys();
    let mut check = Check::new(json!({
        "flood_waits_last_hour": floods,
        "blocked_keys": blocked,
        "accounts": side(
            now.account_decisions.saturating_sub(then.account_decisions),
            now.account_refused.saturating_sub(then.account_refused),
        ),
        "clients": side(
            now.client_decisions.saturating_sub(then.client_decisions),
            now.client_refused.saturating_sub(then.client_refused),
        ),
        "window_secs": age.as_secs(),
    }));
    // Telegram telling the service to slow down is the verdict. The
    // limiter refusing a client over its own limit is that limit
    // working; pacing the accounts is the outbox's job (a backlog has
    // its own alerts).
    let fw = &inner.settings.thresholds.telegram.flood_wait;
    check.worsen(Status::of(floods as f64, fw.warning, fw.critical), || {
        format!("{floods} FLOOD_WAITs in the last hour")
    });
    check
}
