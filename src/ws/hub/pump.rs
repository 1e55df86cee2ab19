//! The hub's supervised pump (root child `ws-hub`): it feeds committed
//! events from the event log's live bus to the [`WsHub`], sends every
//! subscription to the log when it fell behind or was restarted, samples
//! the gateway's health, and prunes the event log.

use super::WsHub;
use crate::events::{EventLog, StoredEvent};
use actix::prelude::*;
use tokio::sync::broadcast;

/// Feeds the hub from the event log's live bus.
pub async fn pump(hub: WsHub, mut rx: broadcast::Receiver<StoredEvent>) {
    loop {
        match rx.recv().await {
            Ok(event) => hub.dispatch(&event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "ws hub fell behind the event bus; clients catch up from the log"
                );
                hub.catch_up_all();
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The supervised actor running the pump (root child `ws-hub`).
pub struct WsHubActor {
    hub: WsHub,
    events: EventLog,
    health: crate::health::websocket::WsHealth,
    retention: crate::config::EventSettings,
}

impl WsHubActor {
    pub fn new(
        hub: WsHub,
        events: EventLog,
        health: crate::health::websocket::WsHealth,
        retention: crate::config::EventSettings,
    ) -> Self {
        Self {
            hub,
            events,
            health,
            retention,
        }
    }

    /// Prunes the event log to `events.retention_*`.
    fn prune(&self, ctx: &mut Context<Self>) {
        let db = self.events.db().clone();
        let age = self.retention.retention_max_age_ms;
        let per_topic = self.retention.retention_max_per_topic;
        ctx.spawn(actix::fut::wrap_future(async move {
            match crate::events::prune(&db, age, per_topic).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "event log pruned"),
                Err(e) => tracing::warn!(error = %e, "pruning the event log failed"),
            }
        }));
    }
}

impl Actor for WsHubActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let rx = self.events.subscribe();
        // A restarted pump missed what was published while it was down.
        self.hub.catch_up_all();
        ctx.spawn(actix::fut::wrap_future(pump(self.hub.clone(), rx)));
        ctx.run_interval(crate::health::websocket::SAMPLE_EVERY, |act, _| {
            act.health.sample()
        });
        let every = self
            .retention
            .prune_interval_ms
            .max(std::time::Duration::from_secs(1));
        ctx.run_interval(every, |act, ctx| act.prune(ctx));
    }
}
