//! The RateLimiter: keyed limits that hold exactly, and Telegram's
//! FLOOD_WAIT blocks.
//!
//! # The guarantee
//!
//! For every [`Key`] (a [`Limit`] applied to a [`Subject`]: an account, one
//! chat of an account, an API user, a WebSocket connection) at most `max`
//! grants fall in *any* sliding window of length `window`, with `window`
//! and `max` from `rate_limits.*`.
//!
//! # Why a sliding-window log, not GCRA or a token bucket
//!
//! GCRA, or a token bucket with burst = `max`, refills continuously: a
//! client can spend the full burst at `t0` and, as tokens return, take
//! nearly another `max` before `t0 + window`, up to `2 × max − 1` grants in
//! one sliding window. That is the defect of fixed windows too (twice the
//! limit around a window's edge), and Telegram's limits are sliding
//! windows, so it is the difference between sending and a FLOOD_WAIT. A
//! token bucket that holds exactly needs burst = 1, which forbids the
//! bursts the limits allow.
//!
//! So each key keeps a log: a ring (`VecDeque`) of its last `max` grant
//! instants, oldest first. A grant at `t` is allowed iff fewer than `max`
//! are stored or `t >= oldest + window`; then `t` goes in and, past `max`,
//! the oldest goes out. Proof sketch: a window containing `t` starts after
//! `t − window >= oldest`, so it excludes the oldest stored grant and every
//! grant before it, and holds at most `max − 1` others plus `t`. The same
//! argument holds when `t` falls before slots booked in the future by
//! [`RateLimiter::reserve`], so the log stays sorted by inserting (an append
//! in the usual case). A decision is O(1) (amortised; an insertion before a
//! booked slot is O(max)), and a key costs `max × 8` bytes plus its map
//! entry.
//!
//! # Flood waits
//!
//! A FLOOD_WAIT from Telegram blocks its key (the account, or one chat) for
//! the seconds asked plus `rate_limits.flood_wait.margin_ms`; a block never
//! shortens a longer one, and every block goes into the account's flood log
//! (one hour) and the metrics.
//!
//! # Storage
//!
//! 16 shards of `Mutex<HashMap<Key, Window>>`, chosen by the key's hash: the
//! hot path (API checks at thousands per second) takes one uncontended lock
//! and never waits on an actor's mailbox. Decisions over several keys lock
//! their shards in index order (no deadlock) and decide all-or-nothing.
//! Memory stays bounded because [`RateLimiter::sweep`], run by the
//! [`RateLimiterActor`] every [`SWEEP_INTERVAL`], drops keys whose whole log
//! has left the window (a fresh entry decides the same) unless a block is in
//! force. All time is [`tokio::time::Instant`], so tests run on a paused
//! clock.

mod actor;
mod blocks;
mod flood;
mod key;
mod limiter;
mod metrics;
mod shards;
mod state;
pub(crate) mod window;

#[cfg(test)]
mod tests;

pub use actor::{RateLimiterActor, SWEEP_INTERVAL, SweepNow};
pub use flood::FloodRecord;
pub use key::{Key, Limit, Subject};
pub use limiter::RateLimiter;
pub use metrics::{Decision, RateLimitMetrics};
pub use state::{KeyState, Throttled};
