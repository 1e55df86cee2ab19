//! `Application::build` wires the service: metrics, database, supervision
//! tree, HTTP listener. `run_until_stopped` serves until SIGTERM/SIGINT (or a
//! [`ShutdownHandle`]), then shuts down in order: answer readiness 503 for
//! `health.drain_ms` while still serving, stop accepting and finish
//! in-flight requests, stop the actor tree in reverse start order, close the
//! database pool.

use crate::accounts::AccountService;
use crate::accounts::actor::AccountDeps;
use crate::accounts::login::LoginService;
use crate::accounts::manager::SessionManager;
use crate::accounts::state::StateBoard;
use crate::auth::AuthService;
use crate::config::Settings;
use crate::config::TelegramBackend;
use crate::db::{DatabaseActor, DbHealthState};
use crate::events::EventLog;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::ratelimit::{RateLimiter, RateLimiterActor};
use crate::sessions::SessionStore;
use crate::supervisor::{
    ChildRef, ChildSpec, StopTree, SupervisionRuntime, Supervisor, SupervisorSpec,
};
use crate::telegram::Backend;
use crate::telegram::grammers::GrammersBackend;
use crate::telegram::sim::{SimBackend, SimWorld};
use actix::Addr;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Asks a running application to shut down gracefully.
#[derive(Clone, Debug, Default)]
pub struct ShutdownHandle(Arc<Notify>);

impl ShutdownHandle {
    pub fn trigger(&self) {
        self.0.notify_one();
    }
}

/// A built, listening service.
pub struct Application {
    port: u16,
    server: Server,
    root: Addr<Supervisor>,
    db: DatabaseConnection,
    supervision: Arc<SupervisionRuntime>,
    database: ChildRef<DatabaseActor>,
    metrics: Metrics,
    shutdown: ShutdownHandle,
    settings: Arc<Settings>,
    sessions: SessionManager,
    events: EventLog,
    limiter: RateLimiter,
    uploads: crate::uploads::Uploads,
    alerts: crate::alerts::AlertRouterHandle,
    ws_hub: crate::ws::hub::WsHub,
    /// Told when the shutdown begins (readiness turns 503).
    health: crate::health::Health,
    sim_world: Option<SimWorld>,
    /// Held while the service runs: no second process serves the same
    /// SQLite file.
    _db_lock: Option<crate::db::local::DbFileLock>,
}

/// Committed events buffered for live subscribers.
const EVENT_BUS_CAPACITY: usize = 4096;

/// The backend `telegram.backend` names.
fn telegram_backend(settings: &Settings) -> anyhow::Result<(Arc<dyn Backend>, Option<SimWorld>)> {
    match settings.telegram.backend {
        TelegramBackend::Sim => {
            let world = SimWorld::default();
            // The sim forgets its keys when the service restarts; let stored
            // development sessions keep working.
            world.adopt_unknown_keys(true);
            Ok((Arc::new(SimBackend::new(world.clone())), Some(world)))
        }
        TelegramBackend::Grammers => {
            let tg = &settings.telegram;
            if tg.api_id <= 0 || tg.api_hash.is_none() {
                anyhow::bail!(
                    "telegram.backend = \"grammers\" needs telegram.api_id and telegram.api_hash (from https://my.telegram.org)"
                );
            }
            Ok((Arc::new(GrammersBackend::new(tg)), None))
        }
    }
}

impl Application {
    /// Open the database, run migrations, start the supervision tree and bind
    /// the listener (port 0 picks a free one; see [`Application::port`]).
    /// The Telegram backend is the one `telegram.backend` names.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_backend(settings, None).await
    }

    /// [`Application::build`] with a given Telegram backend (tests: a sim
    /// world they control, or grammers against a fake MTProto server).
    pub async fn build_with_backend(
        settings: Settings,
        backend: Option<Arc<dyn Backend>>,
    ) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let metrics = Metrics::new().context("registering metrics")?;
        let supervision =
            Arc::new(SupervisionRuntime::new(&metrics.registry).context("registering metrics")?);
        metrics.errors.watch(&supervision);

        if settings.database.url.is_none() {
            crate::config::create_private_dir(&settings.data_dir).with_context(|| {
                format!(
                    "creating the data directory {}",
                    settings.data_dir.display()
                )
            })?;
        }
        let db_lock = crate::db::local::sqlite_file(&settings.database_url())
            .map(|file| crate::db::local::claim(&file))
            .transpose()?;
        let mut db = crate::db::connect(&settings.database_url(), &settings.database).await?;
        crate::db::observe_queries(
            &mut db,
            metrics.db.clone(),
            Duration::from_millis(settings.thresholds.slow_query.log_ms),
        );
        crate::db::migrate(&db).await?;
        metrics
            .db
            .pool_max
            .set(i64::from(settings.database.max_connections));
        let db_health = DbHealthState::new(crate::db::backend_name(&db));
        tracing::info!(backend = crate::db::backend_name(&db), "database ready");

        let (database_spec, database) = {
            let db = db.clone();
            let m = metrics.db.clone();
            let health = db_health.clone();
            let interval = Duration::from_millis(settings.database.health_check_interval_ms);
            let ping_timeout = Duration::from_millis(settings.database.ping_timeout_ms);
            ChildSpec::new("database", move |_| {
                DatabaseActor::new(
                    db.clone(),
                    m.clone(),
                    health.clone(),
                    interval,
                    ping_timeout,
                )
            })
        };
        // Created once: it outlives restarts of its housekeeping actor,
        // which holds a clone.
        let limiter = RateLimiter::new(&settings.rate_limits, metrics.rate_limits.clone());
        let (limiter_spec, _) = {
            let limiter = limiter.clone();
            ChildSpec::new("rate-limiter", move |_| {
                RateLimiterActor::new(limiter.clone())
            })
        };
        let security = crate::security::SecurityContext::from_settings(&settings)?;
        let store = SessionStore::new(db.clone(), security.session_keys.clone());
        let events = EventLog::new(db.clone(), EVENT_BUS_CAPACITY, metrics.events.clone());
        let (backend, sim_world) = match backend {
            Some(b) => (b, None),
            None => telegram_backend(&settings)?,
        };
        tracing::info!(backend = backend.name(), "telegram backend");
        let outbox =
            crate::outbox::Outbox::new(db.clone(), &settings.outbox, metrics.outbox.clone());
        let tg = &settings.telegram;
        let (sessions_spec, sessions) = {
            let deps = |released| AccountDeps {
                db: db.clone(),
                store: store.clone(),
                backend: backend.clone(),
                metrics: metrics.telegram.clone(),
                board: StateBoard::new(metrics.telegram.accounts.clone()),
                pool: crate::accounts::pool::ClientPool::new(
                    tg.client_pool_size as usize,
                    tg.max_clients_per_user as usize,
                ),
                request_timeout: Duration::from_millis(tg.request_timeout_ms),
                health_check_interval: Duration::from_millis(tg.health_check_interval_ms),
                rotation_check_interval: Duration::from_millis(tg.session_rotation_interval_ms),
                update_sync_interval: Duration::from_millis(tg.update_state_sync_interval_ms),
                max_session_age: Duration::from_millis(tg.max_session_age_ms),
                session_error_threshold: tg.session_error_threshold,
                outbox: outbox.clone(),
                limiter: limiter.clone(),
                peer_cache_ttl: Duration::from_millis(settings.cache.default_ttl_ms),
                released,
            };
            SessionManager::new(
                deps,
                events.clone(),
                supervision.clone(),
                &tg.account_restarts,
            )
        };
        let ws_hub = crate::ws::hub::WsHub::new(
            settings.rate_limits.websocket.connections.clone(),
            metrics.ws.clone(),
        );
        let ws_health = crate::health::websocket::WsHealth::new(metrics.ws.clone());
        let (ws_hub_spec, _) = {
            let hub = ws_hub.clone();
            let events = events.clone();
            let health = ws_health.clone();
            let retention = settings.events.clone();
            ChildSpec::new("ws-hub", move |_| {
                crate::ws::hub::WsHubActor::new(
                    hub.clone(),
                    events.clone(),
                    health.clone(),
                    retention.clone(),
                )
            })
        };
        let accounts = AccountService::new(db.clone(), store.clone(), security.phones.clone());
        let uploads = crate::uploads::Uploads::new(
            db.clone(),
            settings.clone(),
            limiter.clone(),
            sessions.clone(),
            accounts.clone(),
            events.clone(),
            metrics.uploads.clone(),
        );
        let (uploader_spec, _) = {
            let uploads = uploads.clone();
            let every = Duration::from_millis(settings.uploads.sweep_interval_ms);
            ChildSpec::new("uploader", move |_| {
                crate::uploads::UploaderActor::new(uploads.clone(), every)
            })
        };
        let alerts = crate::alerts::AlertRouterHandle::new(db.clone());
        let (alert_router_spec, _) = {
            let alerts = alerts.clone();
            let channels = crate::alerts::channels::Channels::new(
                settings.alerting.clone(),
                metrics.alerts.channels.clone(),
            );
            let config = settings.alerting.clone();
            let m = metrics.alerts.clone();
            let db = db.clone();
            ChildSpec::new("alert-router", move |_| {
                crate::alerts::AlertRouter::new(
                    alerts.clone(),
                    config.clone(),
                    channels.clone(),
                    m.clone(),
                    db.clone(),
                )
            })
        };
        let health = crate::health::Health::new(
            settings.clone(),
            supervision.clone(),
            db.clone(),
            db_health.clone(),
            ws_health.clone(),
            limiter.clone(),
            metrics.clone(),
        );
        let (health_monitor_spec, _) = {
            let health = health.clone();
            let m = metrics.health.clone();
            let alerts = alerts.clone();
            ChildSpec::new("health-monitor", move |_| {
                crate::health::HealthMonitor::new(health.clone(), m.clone(), alerts.clone())
            })
        };
        let root = SupervisorSpec::new("root")
            .policy(settings.supervision.policy())
            .child(database_spec)
            .child(limiter_spec)
            .child(sessions_spec)
            .child(ws_hub_spec)
            .child(uploader_spec)
            .child(alert_router_spec)
            .child(health_monitor_spec)
            .start_root(supervision.clone());
        health.watch_root(root.clone().recipient());
        sessions
            .start_all()
            .await
            .context("starting the account actors")?;

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| {
                format!("binding {}:{}", settings.server.host, settings.server.port)
            })?;
        let port = listener.local_addr()?.port();

        let auth = AuthService::from_settings(&settings, db.clone())?;
        let logins = LoginService::new(
            db.clone(),
            backend.clone(),
            accounts.clone(),
            security.phones.clone(),
            sessions.clone(),
            events.clone(),
            &settings.telegram,
        );
        // Bodies are not kept: a job a stop interrupted cannot go on.
        match uploads.fail_interrupted().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                uploads = n,
                "upload jobs interrupted by the last stop were failed"
            ),
            Err(e) => return Err(e).context("failing interrupted uploads"),
        }
        let ws_context = Arc::new(crate::ws::WsContext {
            settings: settings.clone(),
            hub: ws_hub.clone(),
            health: ws_health.clone(),
            auth: auth.clone(),
            accounts: accounts.clone(),
            outbox: outbox.clone(),
            limiter: limiter.clone(),
            db: db.clone(),
            replays: Arc::new(tokio::sync::Semaphore::new(
                (settings.database.max_connections as usize / 2).max(1),
            )),
        });
        let state = web::Data::new(AppState {
            settings: settings.clone(),
            db: db.clone(),
            metrics: metrics.clone(),
            supervision: supervision.clone(),
            db_health,
            auth,
            accounts,
            sessions: sessions.clone(),
            logins,
            events: events.clone(),
            limiter: limiter.clone(),
            outbox: outbox.clone(),
            uploads: uploads.clone(),
            health: health.clone(),
            alerts: alerts.clone(),
            ws: ws_context,
            started_at: Instant::now(),
        });
        let json_cfg = web::JsonConfig::default()
            .limit(settings.server.max_json_bytes)
            .error_handler(http::error::json_error);
        let path_cfg = web::PathConfig::default().error_handler(http::error::path_error);
        let query_cfg = web::QueryConfig::default().error_handler(http::error::query_error);
        let fault_injection = settings.debug.fault_injection;
        let connections = http::connections::ConnectionLimits::new(
            settings.server.max_connections_per_address,
            settings.server.trusted_proxies.clone(),
            metrics.http_connections_refused.clone(),
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
        .shutdown_timeout(settings.server.shutdown_timeout_ms.div_ceil(1000));
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.listen(listener)?.run();
        tracing::info!(
            address = %format!("{}:{port}", settings.server.host),
            environment = settings.environment.as_str(),
            "listening"
        );
        Ok(Self {
            port,
            server,
            root,
            db,
            supervision,
            database,
            metrics,
            shutdown: ShutdownHandle::default(),
            settings,
            sessions,
            events,
            limiter,
            uploads,
            alerts,
            ws_hub,
            health,
            sim_world,
            _db_lock: db_lock,
        })
    }

    pub fn sessions(&self) -> SessionManager {
        self.sessions.clone()
    }

    pub fn events(&self) -> EventLog {
        self.events.clone()
    }

    /// The way in to the alert router.
    pub fn alerts(&self) -> crate::alerts::AlertRouterHandle {
        self.alerts.clone()
    }

    /// The service's own database pool.
    pub fn db(&self) -> sea_orm::DatabaseConnection {
        self.db.clone()
    }

    /// Upload jobs.
    pub fn uploads(&self) -> crate::uploads::Uploads {
        self.uploads.clone()
    }

    /// The rate limiter every request and account shares.
    pub fn limiter(&self) -> RateLimiter {
        self.limiter.clone()
    }

    /// The simulated Telegram, when the sim backend runs from settings.
    pub fn sim_world(&self) -> Option<SimWorld> {
        self.sim_world.clone()
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    pub fn supervision(&self) -> Arc<SupervisionRuntime> {
        self.supervision.clone()
    }

    pub fn database(&self) -> ChildRef<DatabaseActor> {
        self.database.clone()
    }

    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Serve until a signal or the shutdown handle, then shut down in order.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let mut server = actix_rt::spawn(self.server);
        tokio::select! {
            signal = shutdown_signal() => tracing::info!(signal, "shutdown requested"),
            () = self.shutdown.0.notified() => tracing::info!("shutdown requested"),
            res = &mut server => {
                tracing::error!("HTTP server stopped on its own");
                res.context("HTTP server task")??;
            }
        }
        let started = Instant::now();
        // 0. Not ready any more: load balancers stop sending traffic while
        //    everything still serves, for health.drain_ms.
        self.health.begin_shutdown();
        let drain = Duration::from_millis(self.settings.health.drain_ms);
        if !drain.is_zero() {
            tracing::info!(drain_ms = self.settings.health.drain_ms, "draining");
            tokio::select! {
                () = tokio::time::sleep(drain) => {}
                signal = shutdown_signal() => tracing::info!(signal, "drain cut short"),
                () = self.shutdown.0.notified() => tracing::info!("drain cut short"),
            }
        }
        // 1. WebSocket clients are told the server is going away (1001):
        //    they reconnect elsewhere or later, and recover from their offsets.
        let closed = self.ws_hub.shutdown_all();
        if closed > 0 {
            tracing::info!(connections = closed, "closing WebSocket connections");
        }
        // 2. Stop accepting; let in-flight requests finish (bounded by shutdown_timeout).
        handle.stop(true).await;
        // 3. Stop the actor tree in reverse start order, each child within its timeout.
        let tree_budget = Duration::from_millis(self.settings.supervision.shutdown_timeout_ms) * 4;
        if tokio::time::timeout(tree_budget, self.root.send(StopTree))
            .await
            .is_err()
        {
            tracing::warn!("the actor tree did not stop in time");
        }
        // 4. Close the pool (the seed's cleanup on SIGTERM).
        if let Err(e) = self.db.close().await {
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
