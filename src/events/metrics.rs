//! The event log's own metrics: events dropped as duplicates, by kind.

use prometheus::{IntCounterVec, Opts, Registry};

/// The event kinds that carry dedupe keys (the duplicates counter's labels).
pub const DEDUPED_KINDS: [&str; 3] = ["message.new", "message.edited", "message.deleted"];

/// The event log's own metrics.
#[derive(Clone)]
pub struct EventMetrics {
    /// Events dropped because everything they announce was announced
    /// before, by kind (only [`DEDUPED_KINDS`] carry keys).
    pub duplicates: IntCounterVec,
}

impl EventMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let duplicates = IntCounterVec::new(
            Opts::new(
                "tgvisor_events_duplicates_dropped_total",
                "Events not stored because the log had announced all they announce, by kind.",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(duplicates.clone()))?;
        for kind in DEDUPED_KINDS {
            duplicates.with_label_values(&[kind]);
        }
        Ok(Self { duplicates })
    }

    /// Unregistered families (tests, tools).
    pub fn unregistered() -> Self {
        // unwrap: a valid name registered once in a fresh registry cannot fail.
        Self::new(&Registry::new()).unwrap_or_else(|_| unreachable!("a fresh registry"))
    }
}
