//! The `supervision` check: the actor tree (an essential actor down, a
//! storm of restarts in the window, the root given up).

use crate::health::handle::Health;
use crate::health::sample::View;
use crate::health::status::{Check, Status};
use crate::supervisor::RunState;
use serde_json::json;

pub(super) fn check(h: &Health, v: &View) -> Check {
    let s = &h.inner.supervision;
    let tree = s.snapshot();
    let failure = s.root_failure();
    let down: Vec<&String> = tree
        .iter()
        .filter(|(_, a)| a.essential && a.state != RunState::Running)
        .map(|(path, _)| path)
        .collect();
    let (now, then, age) = (&v.now, &v.then, v.age);
    let restarts = now.restarts.saturating_sub(then.restarts);
    let mut check = Check::new(json!({
        "actors": tree.len(),
        "not_running": down,
        "failure": failure,
        "restarts": restarts,
        "window_secs": age.as_secs(),
    }));
    if let Some(f) = &failure {
        check.worsen(Status::Unhealthy, || format!("supervision gave up: {f}"));
    }
    if let Some(first) = down.first() {
        check.worsen(Status::Degraded, || format!("{first} is not running"));
    }
    // More restarts in the window than one supervisor tolerates in its
    // period: actors keep failing, even if each comes back.
    let storm = u64::from(h.inner.settings.supervision.max_restarts);
    if restarts > storm {
        check.worsen(Status::Degraded, || {
            format!("{restarts} actor restarts in the last {} s", age.as_secs())
        });
    }
    check
}
