//! One key's state: the sliding-window log of its last `max` grants and its
//! flood-wait block. Pure logic over [`Instant`]s; the locking and the
//! metrics live in [`super::RateLimiter`] (and, for sign-in attempts per
//! client address, in [`crate::auth::limiter`], which never blocks).

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// A limit's configured window and how many grants fit in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Quota {
    pub window: Duration,
    /// At least 1 (a configured 0 would refuse forever).
    pub max: usize,
}

impl Quota {
    /// `max` grants per `window`; a configured max of 0 is taken as 1.
    pub fn new(window: Duration, max: u32) -> Self {
        Self {
            window,
            max: usize::try_from(max).unwrap_or(usize::MAX).max(1),
        }
    }
}

/// Why a key cannot grant now (when it can: [`Window::ready_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The window is full.
    Rate,
    /// A flood-wait block is in force.
    Block,
}

/// The state of one key: its sliding window and its flood-wait block.
#[derive(Debug, Default)]
pub(crate) struct Window {
    /// The most recent grants (at most `max`), oldest first. Instants after
    /// "now" are slots booked by `reserve`.
    grants: VecDeque<Instant>,
    /// A flood-wait block: nothing is granted before this instant.
    blocked_until: Option<Instant>,
}

impl Window {
    /// `None` if a grant at `now` is allowed; otherwise why not.
    ///
    /// A grant at `t` is allowed iff fewer than `max` grants are stored or
    /// `t >= oldest + window`. That also holds when `t` falls before grants
    /// booked in the future: every window containing `t` then excludes the
    /// oldest stored grant (and every older one), so it holds at most
    /// `max - 1` others.
    pub fn wait(&self, quota: Quota, now: Instant) -> Option<Wait> {
        if self.blocked_until(now).is_some() {
            return Some(Wait::Block);
        }
        if self.grants.len() < quota.max {
            return None;
        }
        let free_at = self.grants.front().map(|oldest| *oldest + quota.window)?;
        (free_at > now).then_some(Wait::Rate)
    }

    /// The earliest instant at or after `now` at which a grant is allowed.
    pub fn ready_at(&self, quota: Quota, now: Instant) -> Instant {
        let mut at = now;
        // A grant at the block's end must also fit the window, and the
        // window's free slot may fall inside the block: take the later.
        if let Some(until) = self.blocked_until {
            at = at.max(until);
        }
        if self.grants.len() >= quota.max
            && let Some(oldest) = self.grants.front()
        {
            at = at.max(*oldest + quota.window);
        }
        at
    }

    /// Records a grant at `at` (allowed by [`Window::wait`] or
    /// [`Window::ready_at`]); keeps the log sorted and at most `max` long.
    pub fn grant(&mut self, quota: Quota, at: Instant) {
        // Usually an append; before a booked future slot, an insertion.
        let pos = self.grants.partition_point(|g| *g <= at);
        self.grants.insert(pos, at);
        while self.grants.len() > quota.max {
            self.grants.pop_front();
        }
    }

    /// Takes back the grant recorded at `at` (the latest of that instant),
    /// if the log still holds it; every other grant still counts.
    pub fn take_back(&mut self, at: Instant) {
        if let Some(i) = self.grants.iter().rposition(|g| *g == at) {
            self.grants.remove(i);
        }
    }

    /// Blocks until `until`; never shortens a longer block.
    pub fn block(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
    }

    /// The block's end, if it is still in force at `now`.
    pub fn blocked_until(&self, now: Instant) -> Option<Instant> {
        self.blocked_until.filter(|u| *u > now)
    }

    /// Grants inside the window ending at `now` (booked future slots count),
    /// and the first of them.
    pub fn in_window(&self, quota: Quota, now: Instant) -> (usize, Option<Instant>) {
        let first = self.grants.partition_point(|g| *g + quota.window <= now);
        (self.grants.len() - first, self.grants.get(first).copied())
    }

    /// Nothing left to remember: every grant has left the window and no
    /// block is in force, so a fresh entry decides the same.
    pub fn is_idle(&self, quota: Quota, now: Instant) -> bool {
        self.blocked_until(now).is_none()
            && self
                .grants
                .back()
                .is_none_or(|last| *last + quota.window <= now)
    }
}
