//! The `websocket` check: the gateway's own window, judged by
//! `thresholds.websocket` (see [`crate::health::websocket`]).

use crate::health::handle::Health;
use crate::health::status::Check;
use serde_json::Value;

pub(super) fn check(h: &Health) -> Check {
    let t = &h.inner.settings.thresholds.websocket;
    let (status, figures) = h.inner.ws.check(t, h.min_volume());
    let mut check = Check::new(serde_json::to_value(&figures).unwrap_or(Value::Null));
    check.worsen(status, || {
        format!(
            "latency {:.0} ms, error rate {:.3}, reconnect rate {:.3} over {} s",
            figures.average_latency_ms,
            figures.error_rate,
            figures.reconnect_rate,
            figures.window_secs
        )
    });
    check
}
