//! tgvisor: a supervised gateway between Telegram user accounts and the
//! applications that drive them.

pub mod actors;
pub mod config;
pub mod db;
pub mod http;
pub mod metrics;
pub mod security;
pub mod startup;
pub mod supervisor;
pub mod telemetry;
