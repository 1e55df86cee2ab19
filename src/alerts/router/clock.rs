//! Wall time that follows tokio's clock, and the timestamps rows carry.

use chrono::{DateTime, FixedOffset, Utc};

/// Wall time that advances with tokio's clock (so paused-time tests move
/// it), anchored at the router's start.
pub(super) struct Clock {
    wall: DateTime<Utc>,
    mono: tokio::time::Instant,
}

impl Clock {
    pub(super) fn new() -> Self {
        Self {
            wall: Utc::now(),
            mono: tokio::time::Instant::now(),
        }
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        self.wall + chrono::Duration::from_std(self.mono.elapsed()).unwrap_or_default()
    }
}

pub(super) fn stamp(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.fixed_offset()
}
