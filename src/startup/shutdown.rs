//! Shutting down in order: readiness turns 503 for `health.drain_ms` while
//! everything still serves, WebSocket clients are told to go (1001), the
//! listener stops and in-flight requests finish, the actor tree stops in
//! reverse start order, the database pool closes.

use super::Application;
use crate::supervisor::StopTree;
use anyhow::Context as _;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;

/// Asks a running application to shut down gracefully.
#[derive(Clone, Debug, Default)]
pub struct ShutdownHandle(Arc<Notify>);

impl ShutdownHandle {
    pub fn trigger(&self) {
        self.0.notify_one();
    }

    async fn requested(&self) {
        self.0.notified().await;
    }
}

impl Application {
    /// Serve until a signal or the shutdown handle, then shut down in order.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let mut server = actix_rt::spawn(self.server);
        tokio::select! {
            signal = shutdown_signal() => tracing::info!(signal, "shutdown requested"),
            () = self.shutdown.requested() => tracing::info!("shutdown requested"),
            res = &mut server => {
                tracing::error!("HTTP server stopped on its own");
                res.context("HTTP server task")??;
            }
        }
        let started = Instant::now();
        // 0. Not ready any more: load balancers stop sending traffic while
        //    everything still serves, for health.drain_ms.
        self.services.health.begin_shutdown();
        let drain = self.services.settings.health.drain_ms;
        if !drain.is_zero() {
            tracing::info!(drain_ms = drain.as_millis(), "draining");
            tokio::select! {
                () = tokio::time::sleep(drain) => {}
                signal = shutdown_signal() => tracing::info!(signal, "drain cut short"),
                () = self.shutdown.requested() => tracing::info!("drain cut short"),
            }
        }
        // 1. WebSocket clients are told the server is going away (1001):
        //    they reconnect elsewhere or later, and recover from their offsets.
        let closed = self.services.ws_hub.shutdown_all();
        if closed > 0 {
            tracing::info!(connections = closed, "closing WebSocket connections");
        }
        // 2. Stop accepting; let in-flight requests finish (bounded by shutdown_timeout).
        handle.stop(true).await;
        // 3. Stop the actor tree in reverse start order, each child within its timeout.
        let tree_budget = self.services.settings.supervision.shutdown_timeout_ms * 4;
        if tokio::time::timeout(tree_budget, self.root.send(StopTree))
            .await
            .is_err()
        {
            tracing::warn!("the actor tree did not stop in time");
        }
        // 4. Close the pool.
        if let Err(e) = self.services.db.close().await {
            tracing::warn!(error = %e, "closing the database pool failed");
        }
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "shutdown complete"
        );
        Ok(())
    }
}

/// Resolves on SIGTERM or SIGINT with the signal's name.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
            _ => {
                tracing::error!("could not install signal handlers");
                std::future::pending().await
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}
