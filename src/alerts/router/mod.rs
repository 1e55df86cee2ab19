//! The AlertRouter actor: one loop that applies the queued raises,
//! resolutions and acknowledgements in order, sends what is due, and
//! sleeps until the next thing is.
//!
//! - [`state`]: the state the router keeps and its loop;
//! - [`store`]: reading and writing the `alerts` table;
//! - [`lifecycle`]: raising, resolving, acknowledging;
//! - [`notify`]: what is due, Alertmanager's refresh, sending;
//! - [`entry`]: an alert as the router holds it, and one pass's
//!   notifications;
//! - [`clock`]: wall time on tokio's clock.

mod clock;
mod entry;
mod lifecycle;
mod notify;
mod state;
mod store;

use super::channels::Channels;
use super::{AlertMetrics, AlertRouterHandle};
use crate::config::Alerting;
use actix::prelude::*;
use sea_orm::DatabaseConnection;
use state::Core;

pub struct AlertRouter {
    handle: AlertRouterHandle,
    config: Alerting,
    channels: Channels,
    metrics: AlertMetrics,
    db: DatabaseConnection,
}

impl AlertRouter {
    pub fn new(
        handle: AlertRouterHandle,
        config: Alerting,
        channels: Channels,
        metrics: AlertMetrics,
        db: DatabaseConnection,
    ) -> Self {
        Self {
            handle,
            config,
            channels,
            metrics,
            db,
        }
    }
}

impl Actor for AlertRouter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let core = Core::new(
            self.handle.clone(),
            self.config.clone(),
            self.channels.clone(),
            self.metrics.clone(),
            self.db.clone(),
        );
        ctx.spawn(core.run().into_actor(self));
    }
}
