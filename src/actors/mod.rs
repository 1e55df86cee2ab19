//! The service's long-lived actors; each runs under the supervision tree.

pub mod database;
