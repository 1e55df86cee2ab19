//! The HealthMonitor: what tgvisor knows about itself, judged by the
//! thresholds of the configuration (`thresholds.*`).
//!
//! Components, each healthy, degraded or unhealthy:
//!
//! - `supervision`: the actor tree (an essential actor down, or more
//!   restarts in the window than `supervision.max_restarts`: degraded; the
//!   root gave up: unhealthy);
//! - `database`: a live ping (failed or timed out: unhealthy), the
//!   window's statements (p95 over `response_time.database.query_time_ms`,
//!   once there are `health.min_volume`: degraded) and the pool (fewer than
//!   `connection_pool.database.min_available` connections left: degraded);
//! - `websocket`: delivery latency, and the frames and connections the
//!   service failed, over the window (`thresholds.websocket`; what clients
//!   did to themselves is shown, not judged: [`websocket`]);
//! - `telegram`: send latency (p95), each DC's ping latency, FLOOD_WAITs in
//!   the last hour (`thresholds.telegram`), the share of messages that
//!   failed on the service's side (the network, timeouts, Telegram's 5xx:
//!   `error_rate.telegram.message_failure`; a message to a chat that does
//!   not exist is its sender's and only shown), accounts that need their
//!   owner;
//! - `rate_limits`: FLOOD_WAITs per hour, Telegram telling the service to
//!   slow down (`thresholds.telegram.flood_wait`); the limiter's refusals
//!   are shown, the accounts' pacing apart from the clients' own limits (a
//!   user over its API limit is that user's doing), and not judged;
//! - `api`: HTTP p95 / p99 / slowest (`response_time.api`) of the time the
//!   service spent (a client's slow body is the client's) and the share of
//!   5xx answers (`error_rate.api`), on API requests (not `/health*`, not
//!   `/metrics`);
//! - `resources`: memory, CPU and storage (`resource`).
//!
//! Figures over time ("the last five minutes") come from snapshots the
//! monitor actor takes every `health.sample_interval_ms`, kept for
//! `health.window_ms`. A share, mean or percentile is judged only once
//! `health.min_volume` events stand behind it (the DC pings excepted: an
//! account pings once per `telegram.health_check_interval_ms`, so a window
//! holds a few). Every check runs under `health.check_timeout_ms`: a
//! check that does not answer in time is unhealthy, and the endpoint still
//! answers.

mod checks;
mod figures;
mod handle;
pub mod monitor;
pub mod probes;
mod report;
pub mod resources;
mod rules;
mod sample;
mod status;
pub mod websocket;
pub mod window;

pub use figures::ratio;
pub use handle::Health;
pub use monitor::HealthMonitor;
pub use sample::{Sample, View};
pub use status::{Check, Report, Status};

/// Every component, in the order reports list them (defined with the
/// `component` label of the status gauge, which has a series for each).
pub use crate::metrics::health::COMPONENTS;

/// The fingerprints of the alert rules (`alerting.rules`, [`Health::rules`]).
pub const RULES: [&str; 3] = ["rule:errors", "rule:connections", "rule:performance"];
