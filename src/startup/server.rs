//! The HTTP listener: the shared state every handler reads, the request
//! configuration, the per-address connection cap.

use super::services::Services;
use crate::http::{self, AppState};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

/// Bind the configured address (port 0 picks a free one).
pub(super) fn bind(s: &Services) -> anyhow::Result<TcpListener> {
    let server = &s.settings.server;
    TcpListener::bind((server.host.as_str(), server.port))
        .with_context(|| format!("binding {}:{}", server.host, server.port))
}

/// What every handler and the WebSocket gateway share.
fn app_state(s: &Services) -> AppState {
    let settings = &s.settings;
    let ws = Arc::new(crate::ws::WsContext {
        settings: settings.clone(),
        hub: s.ws_hub.clone(),
        health: s.ws_health.clone(),
        auth: s.auth.clone(),
        accounts: s.accounts.clone(),
        outbox: s.outbox.clone(),
        limiter: s.limiter.clone(),
        db: s.db.clone(),
        replays: Arc::new(tokio::sync::Semaphore::new(
            (settings.database.max_connections as usize / 2).max(1),
        )),
    });
    AppState {
        settings: settings.clone(),
        db: s.db.clone(),
        metrics: s.metrics.clone(),
        supervision: s.supervision.clone(),
        db_health: s.db_health.clone(),
        auth: s.auth.clone(),
        accounts: s.accounts.clone(),
        account_supervisor: s.account_supervisor.clone(),
        app: app_deps(s),
        events: s.events.clone(),
        limiter: s.limiter.clone(),
        outbox: s.outbox.clone(),
        uploads: s.uploads.clone(),
        health: s.health.clone(),
        alerts: s.alerts.clone(),
        ws,
        started_at: Instant::now(),
    }
}

/// What the use cases of the application layer need.
fn app_deps(s: &Services) -> crate::app::AppDeps {
    let hub = s.ws_hub.clone();
    crate::app::AppDeps::new(
        s.db.clone(),
        s.accounts.clone(),
        s.logins.clone(),
        s.account_supervisor.clone(),
        s.limiter.clone(),
        s.outbox.clone(),
        Arc::new(move |topic: &str| hub.drop_topic(topic)),
    )
}

/// Serve the routes on `listener`, on `server.workers` threads.
pub(super) fn serve(s: &Services, listener: TcpListener) -> anyhow::Result<Server> {
    let settings = &s.settings;
    let state = web::Data::new(app_state(s));
    let json_cfg = web::JsonConfig::default()
        .limit(settings.server.max_json_bytes)
        .error_handler(http::error::json_error);
    let path_cfg = web::PathConfig::default().error_handler(http::error::path_error);
    let query_cfg = web::QueryConfig::default().error_handler(http::error::query_error);
    let fault_injection = settings.debug.fault_injection;
    // actix takes whole seconds: rounded up.
    let shutdown_secs = settings
        .server
        .shutdown_timeout_ms
        .as_millis()
        .div_ceil(1000) as u64;
    let connections = http::connections::ConnectionLimits::new(
        settings.server.max_connections_per_address,
        settings.server.trusted_proxies.clone(),
        s.metrics.http_connections_refused.clone(),
    );
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(http::observe))
            .app_data(state.clone())
            .app_data(json_cfg.clone())
            .app_data(path_cfg.clone())
            .app_data(query_cfg.clone())
            .configure(http::routes(fault_injection))
            .default_service(web::to(http::error::not_found))
    })
    .on_connect(move |conn, ext| connections.on_connect(conn, ext))
    .disable_signals()
    .shutdown_timeout(shutdown_secs);
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    Ok(server.listen(listener)?.run())
}
