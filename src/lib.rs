//! tgvisor: a supervised gateway between Telegram user accounts and the
//! applications that drive them.

pub mod accounts;
pub mod alerts;
pub mod allocator;
pub mod app;
pub mod audit;
pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod entities;
pub mod errors;
pub mod events;
pub mod health;
pub mod http;
pub mod metrics;
pub mod ops;
pub mod outbox;
pub mod ratelimit;
pub mod security;
pub mod sessions;
pub mod startup;
pub use tgvisor_supervisor as supervisor;
pub mod telegram;
pub mod telemetry;
pub mod uploads;
pub mod ws;
