//! The application layer: use cases that span several services, one file
//! each. An entry point (an HTTP handler, a WebSocket frame, a CLI command)
//! parses its input, calls the use case, and maps the result to its own
//! answer; the use case itself knows nothing of HTTP.
//!
//! Services never use this module; entry points and the wiring do.

pub mod import_account;
pub mod remove_account;
pub mod rotate_session;
pub mod sign_in;

pub use import_account::import_account;
pub use remove_account::remove_account;
pub use rotate_session::{RotateSessionError, rotate_session};
pub use sign_in::{start_sign_in, submit_code, submit_password};

use crate::accounts::AccountService;
use crate::accounts::login::LoginService;
use crate::accounts::supervisor::AccountSupervisor;
use crate::outbox::Outbox;
use crate::ratelimit::RateLimiter;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// Tells the live subscribers of an event topic that it is gone (the
/// WebSocket hub, which lives in an entry point the use cases may not name).
pub type DropLiveTopic = Arc<dyn Fn(&str) + Send + Sync>;

/// What the use cases reach; cheap to clone.
#[derive(Clone)]
pub struct AppDeps {
    pub(crate) db: DatabaseConnection,
    pub(crate) accounts: AccountService,
    pub(crate) logins: LoginService,
    pub(crate) supervisor: AccountSupervisor,
    pub(crate) limiter: RateLimiter,
    pub(crate) outbox: Outbox,
    pub(crate) drop_live_topic: DropLiveTopic,
}

impl std::fmt::Debug for AppDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppDeps(..)")
    }
}

impl AppDeps {
    pub fn new(
        db: DatabaseConnection,
        accounts: AccountService,
        logins: LoginService,
        supervisor: AccountSupervisor,
        limiter: RateLimiter,
        outbox: Outbox,
        drop_live_topic: DropLiveTopic,
    ) -> Self {
        Self {
            db,
            accounts,
            logins,
            supervisor,
            limiter,
            outbox,
            drop_live_topic,
        }
    }
}
