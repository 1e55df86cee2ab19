//! sea-orm entities, one per table. The schema itself lives in the
//! `migration` crate; these mirror it column for column.

pub mod account;
pub mod account_update_state;
pub mod alert;
pub mod audit_log;
pub mod event;
pub mod event_horizon;
pub mod event_key;
pub mod outbox;
pub mod session;
pub mod upload;
pub mod user;
