//! The WebSocket gateway's health (`/health/websocket`, and the
//! `websocket` component of `/health`), judged by `thresholds.websocket`
//! over the last few minutes.
//!
//! The hub's actor samples the cumulative `tgvisor_ws_*` counters every
//! [`SAMPLE_EVERY`] into a [`Window`]; the route compares the live values
//! with the oldest sample kept (at most [`WINDOW`] old), so every figure
//! is a rate over a recent window, not since start:
//!
//! - `average_latency_ms`: mean time from an event's commit to its frame
//!   written, over the live events delivered in the window;
//! - `error_rate`: frames the service failed (an `error` frame whose fault
//!   is the service's: `internal`, `unavailable`, ...), per frame received;
//! - `reconnect_rate`: connections the service ended abnormally (its own
//!   connection limit, a token it could not check), per connection seen in
//!   the window; each such client reconnects;
//! - `client_error_rate` and `client_disconnect_rate`: the same for what
//!   clients did to themselves (bad or binary frames, failed or missing
//!   authentication, their own limits, slow reading, going away): reported,
//!   never judged, so one misbehaving client cannot turn the check (and
//!   `/health`) red;
//! - `message_rate`: frames written per second (reported, not judged: it
//!   grows with the number of clients).
//!
//! Each judged figure needs `health.min_volume` events behind it (live
//! events delivered, frames received, connections seen): below that it is
//! shown, not judged.

use super::figures::counter_sum;
use super::window::Window;
use super::{Status, ratio};
use crate::config::WsThresholds;
use crate::domain::Fault;
use crate::metrics::ws::WsMetrics;
use serde::Serialize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
pub const WINDOW: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    delivered: u64,
    delivery_secs: f64,
    frames_in: u64,
    frames_out: u64,
    /// Error frames, the service's fault.
    errors: u64,
    /// Error frames, the clients' doing.
    client_errors: u64,
    connects: u64,
    /// Abnormal disconnects, the service's fault.
    abnormal: u64,
    /// Abnormal disconnects, the clients' doing.
    client_abnormal: u64,
    connections: i64,
}

/// Whether a child's `fault` label is `fault`.
fn of(fault: Fault) -> impl Fn(&[(&str, &str)]) -> bool {
    move |l| l.iter().any(|&(n, v)| n == "fault" && v == fault.as_str())
}

impl Sample {
    fn take(m: &WsMetrics) -> Self {
        Self {
            delivered: m.delivery.get_sample_count(),
            delivery_secs: m.delivery.get_sample_sum(),
            frames_in: m.messages_in.get(),
            frames_out: counter_sum(&m.messages_out, |_| true),
            errors: counter_sum(&m.errors, of(Fault::Server)),
            client_errors: counter_sum(&m.errors, of(Fault::Client)),
            connects: m.connects.get(),
            abnormal: counter_sum(&m.disconnects, of(Fault::Server)),
            client_abnormal: counter_sum(&m.disconnects, of(Fault::Client)),
            connections: m.connections.get(),
        }
    }
}

/// The figures `/health/websocket` shows.
#[derive(Debug, Serialize, PartialEq)]
pub struct WsFigures {
    pub connections: i64,
    pub message_rate: f64,
    /// Frames the service failed, per frame received (judged).
    pub error_rate: f64,
    /// Frames refused for the client's own mistake or limit, per frame
    /// received (reported).
    pub client_error_rate: f64,
    pub average_latency_ms: f64,
    /// Connections the service ended abnormally, per connection seen
    /// (judged).
    pub reconnect_rate: f64,
    /// Connections ended by the client's doing, per connection seen
    /// (reported).
    pub client_disconnect_rate: f64,
    /// Frames received in the window.
    pub frames_received: u64,
    /// Connections open at the window's start or opened since.
    pub connections_seen: u64,
    /// Live events delivered in the window.
    pub delivered: u64,
    /// The span the rates are over.
    pub window_secs: u64,
}

/// The window of samples; cheap to clone.
#[derive(Clone)]
pub struct WsHealth {
    metrics: WsMetrics,
    samples: Arc<Mutex<Window<Sample>>>,
}

impl WsHealth {
    pub fn new(metrics: WsMetrics) -> Self {
        let health = Self {
            metrics,
            samples: Arc::new(Mutex::new(Window::new(WINDOW))),
        };
        health.sample();
        health
    }

    /// Records the counters now, dropping samples older than the window
    /// (the newest sample at least [`WINDOW`] old stays, so the window is
    /// full).
    pub fn sample(&self) {
        let now = Sample::take(&self.metrics);
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(now);
    }

    /// Rates since the oldest sample kept.
    pub fn figures(&self) -> WsFigures {
        let now = Sample::take(&self.metrics);
        let (span, then) = self
            .samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .oldest()
            .unwrap_or_default();
        figures(&then, &now, span)
    }

    /// The figures and their status under `thresholds`, each judged once
    /// `min_volume` events stand behind it (`health.min_volume`).
    pub fn check(&self, t: &WsThresholds, min_volume: u64) -> (Status, WsFigures) {
        let f = self.figures();
        (judge(&f, t, min_volume), f)
    }
}

/// The figures between `then` and `now`, `span` apart.
fn figures(then: &Sample, now: &Sample, span: Duration) -> WsFigures {
    let delivered = now.delivered.saturating_sub(then.delivered);
    let latency_secs = (now.delivery_secs - then.delivery_secs).max(0.0);
    let seen = u64::try_from(then.connections.max(0)).unwrap_or(0)
        + now.connects.saturating_sub(then.connects);
    let frames_in = now.frames_in.saturating_sub(then.frames_in);
    WsFigures {
        connections: now.connections,
        message_rate: if span.is_zero() {
            0.0
        } else {
            now.frames_out.saturating_sub(then.frames_out) as f64 / span.as_secs_f64()
        },
        error_rate: ratio(now.errors.saturating_sub(then.errors), frames_in),
        client_error_rate: ratio(
            now.client_errors.saturating_sub(then.client_errors),
            frames_in,
        ),
        average_latency_ms: if delivered == 0 {
            0.0
        } else {
            latency_secs * 1000.0 / delivered as f64
        },
        reconnect_rate: ratio(now.abnormal.saturating_sub(then.abnormal), seen),
        client_disconnect_rate: ratio(
            now.client_abnormal.saturating_sub(then.client_abnormal),
            seen,
        ),
        frames_received: frames_in,
        connections_seen: seen,
        delivered,
        window_secs: span.as_secs(),
    }
}

/// The figures under `t`; each only once `min_volume` events stand
/// behind it (one failure out of one is not a rate).
fn judge(f: &WsFigures, t: &WsThresholds, min_volume: u64) -> Status {
    let latency = &t.message_latency;
    let judged = |value: f64, volume: u64| if volume >= min_volume { value } else { 0.0 };
    let latency_ms = judged(f.average_latency_ms, f.delivered);
    let errors = judged(f.error_rate, f.frames_received);
    let reconnects = judged(f.reconnect_rate, f.connections_seen);
    if latency_ms > latency.critical_ms.as_millis() as f64
        || errors > t.error_rate.critical
        || reconnects > t.reconnect_rate.critical
    {
        Status::Unhealthy
    } else if latency_ms > latency.warning_ms.as_millis() as f64
        || errors > t.error_rate.warning
        || reconnects > t.reconnect_rate.warning
    {
        Status::Degraded
    } else {
        Status::Healthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Environment, Settings};

    fn thresholds() -> WsThresholds {
        Settings::from_defaults(Environment::Test, figment::Figment::new())
            .expect("defaults")
            .thresholds
            .websocket
    }

    fn fig(latency: f64, errors: f64, reconnects: f64) -> WsFigures {
        WsFigures {
            connections: 10,
            message_rate: 0.0,
            error_rate: errors,
            client_error_rate: 0.5,
            average_latency_ms: latency,
            reconnect_rate: reconnects,
            client_disconnect_rate: 0.5,
            frames_received: 1000,
            connections_seen: 100,
            delivered: 1000,
            window_secs: 300,
        }
    }

    fn verdict(f: &WsFigures, t: &WsThresholds) -> Status {
        judge(f, t, 20)
    }

    #[test]
    fn the_thresholds_decide_and_clients_doings_do_not() {
        let t = thresholds();
        // Half the frames and connections the clients' own mistakes: healthy.
        assert_eq!(verdict(&fig(50.0, 0.0, 0.0), &t), Status::Healthy);
        assert_eq!(verdict(&fig(150.0, 0.0, 0.0), &t), Status::Degraded);
        assert_eq!(verdict(&fig(600.0, 0.0, 0.0), &t), Status::Unhealthy);
        assert_eq!(verdict(&fig(0.0, 0.02, 0.0), &t), Status::Degraded);
        assert_eq!(verdict(&fig(0.0, 0.06, 0.0), &t), Status::Unhealthy);
        assert_eq!(verdict(&fig(0.0, 0.0, 0.2), &t), Status::Degraded);
        assert_eq!(verdict(&fig(0.0, 0.0, 0.31), &t), Status::Unhealthy);
    }

    #[test]
    fn one_failure_out_of_one_is_not_judged() {
        let t = thresholds();
        let mut f = fig(900.0, 1.0, 1.0);
        (f.delivered, f.frames_received, f.connections_seen) = (1, 1, 1);
        assert_eq!(judge(&f, &t, 20), Status::Healthy);
        assert_eq!(judge(&f, &t, 1), Status::Unhealthy);
        f.frames_received = 20;
        assert_eq!(judge(&f, &t, 20), Status::Unhealthy, "enough frames");
    }

    #[actix_rt::test]
    async fn rates_are_over_the_window_not_since_start_and_split_by_fault() {
        tokio::time::pause();
        let registry = prometheus::Registry::new();
        let m = WsMetrics::new(&registry).unwrap();
        // Before the window: a bad spell.
        m.messages_in.inc_by(10);
        m.error("internal", Fault::Server);
        m.connects.inc_by(4);
        for _ in 0..4 {
            m.disconnected("at_capacity");
        }
        let health = WsHealth::new(m.clone());
        for _ in 0..(WINDOW.as_secs() / SAMPLE_EVERY.as_secs() + 1) {
            tokio::time::advance(SAMPLE_EVERY).await;
            health.sample();
        }
        // In the window: 100 frames, 1 the service failed and 30 bad ones;
        // 10 connections, 2 the service turned away, 4 that never
        // authenticated, 3 closed by their clients; 4 deliveries of 50 ms.
        m.messages_in.inc_by(100);
        m.error("internal", Fault::Server);
        for _ in 0..30 {
            m.error("invalid_frame", Fault::Client);
        }
        m.connects.inc_by(10);
        m.connections.set(5);
        for reason in ["at_capacity", "at_capacity", "client", "client", "client"] {
            m.disconnected(reason);
        }
        for _ in 0..4 {
            m.disconnected("unauthorized");
        }
        for _ in 0..4 {
            m.delivery.observe(0.05);
        }
        m.messages_out.with_label_values(&["event"]).inc_by(600);
        let f = health.figures();
        assert_eq!(f.window_secs, WINDOW.as_secs());
        assert!((f.error_rate - 0.01).abs() < 1e-9, "{f:?}");
        assert!((f.client_error_rate - 0.3).abs() < 1e-9, "{f:?}");
        assert!((f.reconnect_rate - 0.2).abs() < 1e-9, "{f:?}");
        assert!((f.client_disconnect_rate - 0.4).abs() < 1e-9, "{f:?}");
        assert!((f.average_latency_ms - 50.0).abs() < 1e-6, "{f:?}");
        assert!((f.message_rate - 2.0).abs() < 1e-9, "{f:?}");
        assert_eq!(
            (
                f.connections,
                f.frames_received,
                f.connections_seen,
                f.delivered
            ),
            (5, 100, 10, 4)
        );
        // 2 of 10 turned away by the service is above the 10 % warning;
        // the clients' 30 % and 40 % are not judged.
        assert_eq!(judge(&f, &thresholds(), 10), Status::Degraded);
        // Below the volume (10 connections seen), nothing is judged.
        assert_eq!(judge(&f, &thresholds(), 11), Status::Healthy);
    }
}
