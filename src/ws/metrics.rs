//! WebSocket metrics (the seed's WebSocketMetrics): connections, frames in
//! and out, delivery latency, errors and disconnects by reason.

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
/// the others abnormal (the client will reconnect).
pub const DISCONNECT_REASONS: [&str; 10] = [
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
];

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
    /// Disconnects by reason (one of [`DISCONNECT_REASONS`]).
    pub disconnects: IntCounterVec,
    /// Client frames refused with an error frame, by code.
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
                    "WebSocket connections closed, by reason.",
                ),
                &["reason"],
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    "tgvisor_ws_errors_total",
                    "Client frames answered with an error frame, by code.",
                ),
                &["code"],
            )?,
        };
        registry.register(Box::new(m.connections.clone()))?;
        registry.register(Box::new(m.connects.clone()))?;
        registry.register(Box::new(m.messages_in.clone()))?;
        registry.register(Box::new(m.messages_out.clone()))?;
        registry.register(Box::new(m.delivery.clone()))?;
        registry.register(Box::new(m.disconnects.clone()))?;
        registry.register(Box::new(m.errors.clone()))?;
        // Every reason from the start, so the first abnormal disconnect
        // counts in increase() and dashboards see the series.
        for reason in DISCONNECT_REASONS {
            m.disconnects.with_label_values(&[reason]);
        }
        Ok(m)
    }

    /// The counter of frames of `kind` written.
    pub fn out(&self, kind: FrameKind) -> &IntCounter {
        &self.out_by_kind[kind as usize]
    }
}
