//! The root supervisor's children, one function each, in start order (see
//! docs/architecture.md for the tree): each builds the child's spec from
//! the services it needs.

use super::services::Services;
use crate::alerts::AlertRouter;
use crate::alerts::channels::Channels;
use crate::db::DatabaseActor;
use crate::health::HealthMonitor;
use crate::ratelimit::RateLimiterActor;
use crate::supervisor::{ChildRef, ChildSpec};
use crate::uploads::UploaderActor;
use crate::ws::hub::WsHubActor;

/// Pings the database and samples its pool.
pub(super) fn database(s: &Services) -> (ChildSpec, ChildRef<DatabaseActor>) {
    let db = s.db.clone();
    let metrics = s.metrics.db.clone();
    let health = s.db_health.clone();
    let interval = s.settings.database.health_check_interval_ms;
    let ping_timeout = s.settings.database.ping_timeout_ms;
    ChildSpec::new("database", move |_| {
        DatabaseActor::new(
            db.clone(),
            metrics.clone(),
            health.clone(),
            interval,
            ping_timeout,
        )
    })
}

/// Sweeps the rate limiter's idle windows.
pub(super) fn rate_limiter(s: &Services) -> ChildSpec {
    let limiter = s.limiter.clone();
    ChildSpec::new("rate-limiter", move |_| {
        RateLimiterActor::new(limiter.clone())
    })
    .0
}

/// Fans committed events out to the WebSocket connections.
pub(super) fn ws_hub(s: &Services) -> ChildSpec {
    let hub = s.ws_hub.clone();
    let events = s.events.clone();
    let health = s.ws_health.clone();
    let retention = s.settings.events.clone();
    ChildSpec::new("ws-hub", move |_| {
        WsHubActor::new(
            hub.clone(),
            events.clone(),
            health.clone(),
            retention.clone(),
        )
    })
    .0
}

/// Sweeps upload jobs that went quiet.
pub(super) fn uploader(s: &Services) -> ChildSpec {
    let uploads = s.uploads.clone();
    let every = s.settings.uploads.sweep_interval_ms;
    ChildSpec::new("uploader", move |_| {
        UploaderActor::new(uploads.clone(), every)
    })
    .0
}

/// Routes alerts to their channels, with repeats and escalation.
pub(super) fn alert_router(s: &Services) -> ChildSpec {
    let alerts = s.alerts.clone();
    let channels = Channels::new(
        s.settings.alerting.clone(),
        s.metrics.alerts.channels.clone(),
    );
    let config = s.settings.alerting.clone();
    let metrics = s.metrics.alerts.clone();
    let db = s.db.clone();
    ChildSpec::new("alert-router", move |_| {
        AlertRouter::new(
            alerts.clone(),
            config.clone(),
            channels.clone(),
            metrics.clone(),
            db.clone(),
        )
    })
    .0
}

/// Judges the health checks and raises alerts.
pub(super) fn health_monitor(s: &Services) -> ChildSpec {
    let health = s.health.clone();
    let metrics = s.metrics.health.clone();
    let alerts = s.alerts.clone();
    ChildSpec::new("health-monitor", move |_| {
        HealthMonitor::new(health.clone(), metrics.clone(), alerts.clone())
    })
    .0
}
