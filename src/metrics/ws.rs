//! The WebSocket gateway's metric families: connections, frames in and
//! out, delivery latency, errors by code and disconnects by reason, each
//! with its `fault` (see [`crate::domain::Fault`]): what a client did to itself
//! (a bad frame, a failed authentication, its own limits, going away) is
//! counted apart from what the service failed.

use crate::domain::Fault;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// What a frame to a client is (the `type` label of
/// `tgvisor_ws_messages_out_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Event,
    Reply,
    Error,
}

impl FrameKind {
    const ALL: [FrameKind; 3] = [FrameKind::Event, FrameKind::Reply, FrameKind::Error];

    pub fn label(self) -> &'static str {
        match self {
            FrameKind::Event => "event",
            FrameKind::Reply => "reply",
            FrameKind::Error => "error",
        }
    }
}

/// Every reason a connection ends with (the `reason` label of
/// `tgvisor_ws_disconnects_total`): `client` and `shutdown` are orderly,
/// the others abnormal (the client will reconnect). Whose fault each is:
/// [`disconnect_fault`].
pub const DISCONNECT_REASONS: [&str; 12] = [
    "client",
    "shutdown",
    "unauthorized",
    "rate_limited",
    "too_many_connections",
    "frame_too_large",
    "slow_consumer",
    "heartbeat_timeout",
    "resync_required",
    "protocol_error",
    "at_capacity",
    "internal",
];

/// Whose fault a connection's end is: orderly (`client`, `shutdown`) is
/// nobody's; `at_capacity` (the service's own connection limit,
/// `rate_limits.websocket.connections.total`) and `internal` (the service
/// could not check a token) are the service's; every other reason is the
/// client's doing: it sent what the protocol refuses, failed to
/// authenticate, went over its own limits, stopped reading or answering
/// (its network, its process), or came back after its offsets were pruned.
pub fn disconnect_fault(reason: &str) -> Fault {
    match reason {
        "client" | "shutdown" => Fault::None,
        "at_capacity" | "internal" => Fault::Server,
        _ => Fault::Client,
    }
}

/// Error codes that mean the service failed a client's frame (a 5xx in
/// HTTP terms): the database or the outbox failed or was not running.
pub const SERVER_ERROR_CODES: [&str; 3] = ["internal", "unavailable", "retry"];

/// Whose fault an error frame with `code` is, unless its sender knows
/// better (the service's own connection limit is `too_many_connections`
/// too): the codes of [`SERVER_ERROR_CODES`] are the service's, every other
/// code answers a client's mistake or a client's own limit.
pub fn error_fault(code: &str) -> Fault {
    if SERVER_ERROR_CODES.contains(&code) {
        Fault::Server
    } else {
        Fault::Client
    }
}

#[derive(Clone)]
pub struct WsMetrics {
    /// Open connections (authenticated or not yet).
    pub connections: IntGauge,
    /// Connections opened since start (for the reconnect rate).
    pub connects: IntCounter,
    /// Frames received from clients.
    pub messages_in: IntCounter,
    /// Frames written to clients, by type (event, reply, error).
    pub messages_out: IntCounterVec,
    /// `messages_out`'s children, resolved once (a label lookup per frame
    /// showed in the fan-out's profile).
    out_by_kind: [IntCounter; 3],
    /// Event created (committed) to its frame written to the client.
    pub delivery: Histogram,
    /// Disconnects by reason (one of [`DISCONNECT_REASONS`]) and fault
    /// ([`disconnect_fault`]).
    pub disconnects: IntCounterVec,
    /// Error frames written, by code and fault ([`error_fault`]).
    pub errors: IntCounterVec,
}

impl WsMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let messages_out = IntCounterVec::new(
            Opts::new(
                "tgvisor_ws_messages_out_total",
                "Frames written to WebSocket clients, by type.",
            ),
            &["type"],
        )?;
        let out_by_kind = FrameKind::ALL.map(|k| messages_out.with_label_values(&[k.label()]));
        let m = Self {
            connections: IntGauge::new("tgvisor_ws_connections", "Open WebSocket connections.")?,
            connects: IntCounter::new(
                "tgvisor_ws_connects_total",
                "WebSocket connections opened.",
            )?,
            messages_in: IntCounter::new(
                "tgvisor_ws_messages_in_total",
                "Frames received from WebSocket clients.",
            )?,
            messages_out,
            out_by_kind,
            delivery: Histogram::with_opts(
                HistogramOpts::new(
                    "tgvisor_ws_delivery_seconds",
                    "From an event's commit to its frame written to a client.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
            )?,
            disconnects: IntCounterVec::new(
                Opts::new(
                    "tgvisor_ws_disconnects_total",
                    "WebSocket connections closed, by reason and fault (none: orderly; client: the client's doing; server: the service's).",
                ),
                &["reason", "fault"],
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    "tgvisor_ws_errors_total",
                    "Error frames written to WebSocket clients, by code and fault (client: the client's mistake or limit; server: the service failed).",
                ),
                &["code", "fault"],
            )?,
        };
        registry.register(Box::new(m.connections.clone()))?;
        registry.register(Box::new(m.connects.clone()))?;
        registry.register(Box::new(m.messages_in.clone()))?;
        registry.register(Box::new(m.messages_out.clone()))?;
        registry.register(Box::new(m.delivery.clone()))?;
        registry.register(Box::new(m.disconnects.clone()))?;
        registry.register(Box::new(m.errors.clone()))?;
        // Every reason from the start, and every error the service can be
        // at fault for, so the first one counts in increase() and
        // dashboards see the series.
        for reason in DISCONNECT_REASONS {
            m.disconnects
                .with_label_values(&[reason, disconnect_fault(reason).as_str()]);
        }
        for code in SERVER_ERROR_CODES.iter().chain(&["too_many_connections"]) {
            m.errors.with_label_values(&[code, Fault::Server.as_str()]);
        }
        Ok(m)
    }

    /// Counts an error frame with `code`, `fault`'s doing.
    pub fn error(&self, code: &str, fault: Fault) {
        self.errors.with_label_values(&[code, fault.as_str()]).inc();
    }

    /// Counts a connection that ended for `reason`.
    pub fn disconnected(&self, reason: &str) {
        self.disconnects
            .with_label_values(&[reason, disconnect_fault(reason).as_str()])
            .inc();
    }

    /// The counter of frames of `kind` written.
    pub fn out(&self, kind: FrameKind) -> &IntCounter {
        &self.out_by_kind[kind as usize]
    }
}
