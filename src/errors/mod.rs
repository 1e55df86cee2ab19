//! The ErrorTracker: errors grouped by kind and message shape,
//! each group with its count, first and last sight, and up to five
//! redacted samples; admins read it at `GET /api/v1/errors`.
//!
//! What is tracked: every 5xx answer (kind: its error code; the sample
//! carries the incident id the answer and the log line share), and every
//! actor that exited with an error or a panic (kind `actor_error` or
//! `actor_panic`, from the supervision events).
//!
//! A message's shape is the message with its variable parts replaced:
//! numbers, hex and UUIDs become `N`, quoted text becomes `"…"`, so one
//! failing statement is one group whatever its ids. Samples are scrubbed
//! of secrets (tokens, phone numbers) before they are kept.

mod shape;
mod tracker;

pub use shape::shape;
pub use tracker::{ErrorGroup, ErrorSample, ErrorTracker};
