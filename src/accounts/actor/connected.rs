//! What runs while the account is connected: the update pump (see
//! [`crate::accounts::updates`]), the outbox drain, and the watch on the
//! connection.

use super::AccountActor;
use super::messages::AccountWideTgError;
use super::sink::StoreSink;
use crate::telegram::{Client, Connection, TgError};
use actix::prelude::*;
use std::sync::Arc;

/// The drain reports to the actor through its mailbox.
struct MailboxObserver(Addr<AccountActor>);

impl crate::outbox::drain::DrainObserver for MailboxObserver {
    fn account_error(&self, err: TgError) {
        self.0.do_send(AccountWideTgError(err));
    }
}

impl AccountActor {
    pub(super) fn on_connected(
        &mut self,
        conn: Connection,
        client: Arc<dyn Client>,
        sink: Arc<StoreSink>,
        me: crate::telegram::Me,
        home_dc: i32,
        ctx: &mut Context<Self>,
    ) {
        self.connect_attempt = 0;
        self.client = Some(client);
        self.sink = Some(sink);
        self.home_dc = home_dc;
        let Connection {
            updates, closed, ..
        } = conn;
        // The pump ends by itself when the client is dropped or disconnected
        // (the update channel closes), after writing what it already took.
        let pump = crate::accounts::updates::Pump {
            account_id: self.id,
            writer: self.writer.clone(),
            metrics: self.deps.metrics.clone(),
            quiet_interval: self.deps.update_sync_interval,
        };
        // Detached, so that it writes what it took even as the actor stops;
        // watched, so that its panic fails the actor (which its supervisor
        // restarts, reconnecting and catching up from the stored state).
        let pump = actix::spawn(pump.run(updates));
        ctx.spawn(actix::fut::wrap_future(pump).map(|ended, _: &mut Self, _| {
            if let Err(e) = ended
                && e.is_panic()
            {
                std::panic::resume_unwind(e.into_panic());
            }
        }));
        ctx.spawn(
            actix::fut::wrap_future(closed)
                .map(|err, act: &mut Self, ctx| act.on_connection_lost(err, ctx)),
        );
        // The outbox drain lives as long as this connection (it is dropped
        // with the actor); what it was sending is tried again next time.
        if let Some(client) = self.client.clone() {
            let outbox = &self.deps.outbox;
            let drain = crate::outbox::drain::Drain {
                account_id: self.id,
                client,
                store: Arc::new(crate::outbox::drain::DbStore {
                    db: outbox.db().clone(),
                    writer: self.writer.clone(),
                }),
                arrivals: outbox.arrivals(self.id),
                limiter: self.deps.limiter.clone(),
                peers: self.peers.clone(),
                metrics: outbox.metrics().clone(),
                settings: outbox.settings().clone(),
                request_timeout: self.deps.request_timeout,
                observer: Arc::new(MailboxObserver(ctx.address())),
            };
            ctx.spawn(actix::fut::wrap_future(drain.run()));
        }
        self.set_connected(
            me.id,
            serde_json::json!({ "telegram_user_id": me.id, "dc": home_dc }),
        );
        // A flood wait met before a reconnect still holds (the limiter
        // outlives this actor): say so again.
        let account_key = crate::ratelimit::Key::account_messages(self.id);
        if let Some(until) = self.deps.limiter.blocked_until(&account_key) {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            self.flood_limited_for(left, ctx);
        }
    }
}
