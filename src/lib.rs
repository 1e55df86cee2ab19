//! tgvisor: a supervised gateway between Telegram user accounts and the
//! applications that drive them.
//!
//! # Layout
//!
//! One module per concern, in layers; a module uses its own layer or lower
//! ones, never a higher one, and no modules or files depend on each other in
//! a cycle (`scripts/check-layers` checks both). Lowest first:
//!
//! - core: [`domain`] (validated values, account, message and upload
//!   states, [`domain::Fault`]), [`config`], [`supervisor`] (OTP-style
//!   supervision on actix, the `tgvisor-supervisor` crate), [`allocator`],
//!   [`telemetry`] (logs, redaction);
//! - infrastructure: [`db`], [`entities`], [`security`], [`sessions`] (the
//!   encrypted session store), [`telegram`] (the port; sim and grammers);
//! - services: [`audit`], [`ratelimit`], [`events`] (the durable event log),
//!   [`accounts`] (an actor per account under the account supervisor),
//!   [`outbox`], [`uploads`], [`auth`];
//! - observability: [`errors`] (the error tracker), [`metrics`],
//!   [`health`], [`alerts`];
//! - application: [`app`], use cases that span services (signing in,
//!   importing or rotating a session, removing an account);
//! - entry points: [`http`], [`ws`] (the WebSocket gateway), [`ops`] (the
//!   operator commands);
//! - wiring: [`startup`].
//!
//! Where to start reading: [`startup::Application::build`] wires
//! everything and starts the supervision tree; from there follow a flow:
//! a send from `http` through [`outbox`] to an account's drain, an update
//! from [`telegram`] through [`accounts`] and [`events`] to [`ws`].
//! `docs/architecture.md` describes the layers, the tree and the flows;
//! `docs/websocket-protocol.md` the protocol of `GET /ws`.

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
