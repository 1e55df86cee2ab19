//! The RateLimiter actor: housekeeping only. Decisions never go through its
//! mailbox; the [`RateLimiter`] it holds is a clone of the one every caller
//! uses, so the limiter's state outlives the actor's restarts.

use super::RateLimiter;
use actix::prelude::*;
use std::time::Duration;

/// How often idle keys are dropped and the blocked-keys gauge is set.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Sweep now; answers how many keys were dropped.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct SweepNow;

/// Sweeps the limiter every [`SWEEP_INTERVAL`].
pub struct RateLimiterActor {
    limiter: RateLimiter,
}

impl RateLimiterActor {
    pub fn new(limiter: RateLimiter) -> Self {
        Self { limiter }
    }

    fn sweep(&self) -> usize {
        let dropped = self.limiter.sweep();
        if dropped > 0 {
            tracing::debug!(dropped, "rate limiter: idle keys dropped");
        }
        dropped
    }
}

impl Actor for RateLimiterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // A restarted actor sets the gauge at once rather than after a period.
        self.sweep();
        ctx.run_interval(SWEEP_INTERVAL, |act, _| {
            act.sweep();
        });
    }
}

impl Handler<SweepNow> for RateLimiterActor {
    type Result = usize;

    fn handle(&mut self, _: SweepNow, _: &mut Context<Self>) -> usize {
        self.sweep()
    }
}
