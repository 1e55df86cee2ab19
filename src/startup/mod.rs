//! `Application::build` wires the service: metrics, the database, the
//! services, the supervision tree, the HTTP listener.
//! `run_until_stopped` ([`shutdown`]) serves until SIGTERM/SIGINT (or a
//! [`ShutdownHandle`]) and shuts down in order.
//!
//! - `services.rs`: every service, built once from the settings;
//! - `children.rs`: the root supervisor's children, one function each;
//! - `server.rs`: the HTTP listener and the state handlers share;
//! - `shutdown.rs`: the orderly stop.

mod children;
mod server;
mod services;
mod shutdown;

pub use shutdown::ShutdownHandle;

use crate::accounts::supervisor::AccountSupervisor;
use crate::config::Settings;
use crate::db::DatabaseActor;
use crate::events::EventLog;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::supervisor::{ChildRef, SupervisionRuntime, Supervisor, SupervisorSpec};
use crate::telegram::Backend;
use crate::telegram::sim::SimWorld;
use actix::Addr;
use actix_web::dev::Server;
use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use services::Services;
use std::sync::Arc;

/// A built, listening service.
pub struct Application {
    port: u16,
    server: Server,
    root: Addr<Supervisor>,
    database: ChildRef<DatabaseActor>,
    shutdown: ShutdownHandle,
    services: Services,
    /// Held while the service runs: no second process serves the same
    /// SQLite file.
    _db_lock: Option<crate::db::local::DbFileLock>,
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
        let (db, db_lock) = open_database(&settings, &metrics).await?;
        let s = Services::build(settings.clone(), db, metrics, supervision.clone(), backend)?;

        let (database_spec, database) = children::database(&s);
        let [outbox_writer, outbox_housekeeping] = s.outbox.task_children();
        let [account_releases, account_give_ups] = s.account_supervisor.task_children();
        let root = SupervisorSpec::new("root")
            .policy(settings.supervision.policy())
            .child(s.metrics.errors.task_child(supervision.clone()))
            .child(database_spec)
            .child(s.events.writers_supervisor(supervision.clone()))
            .child(children::rate_limiter(&s))
            .child(outbox_writer)
            .child(outbox_housekeeping)
            .child(s.account_supervisor_spec.clone())
            .child(account_releases)
            .child(account_give_ups)
            .child(children::ws_hub(&s))
            .child(children::uploader(&s))
            .child(children::alert_router(&s))
            .child(children::health_monitor(&s))
            .start_root(supervision);
        s.health.watch_root(root.clone().recipient());
        s.account_supervisor
            .start_all()
            .await
            .context("starting the account actors")?;
        // Bodies are not kept: a job a stop interrupted cannot go on.
        match s.uploads.fail_interrupted().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                uploads = n,
                "upload jobs interrupted by the last stop were failed"
            ),
            Err(e) => return Err(e).context("failing interrupted uploads"),
        }

        let listener = server::bind(&s)?;
        let port = listener.local_addr()?.port();
        let server = server::serve(&s, listener)?;
        tracing::info!(
            address = %format!("{}:{port}", settings.server.host),
            environment = settings.environment.as_str(),
            "listening"
        );
        Ok(Self {
            port,
            server,
            root,
            database,
            shutdown: ShutdownHandle::default(),
            services: s,
            _db_lock: db_lock,
        })
    }

    pub fn account_supervisor(&self) -> AccountSupervisor {
        self.services.account_supervisor.clone()
    }

    pub fn events(&self) -> EventLog {
        self.services.events.clone()
    }

    /// The way in to the alert router.
    pub fn alerts(&self) -> crate::alerts::AlertRouterHandle {
        self.services.alerts.clone()
    }

    /// The service's own database pool.
    pub fn db(&self) -> DatabaseConnection {
        self.services.db.clone()
    }

    /// Upload jobs.
    pub fn uploads(&self) -> crate::uploads::Uploads {
        self.services.uploads.clone()
    }

    /// The rate limiter every request and account shares.
    pub fn limiter(&self) -> RateLimiter {
        self.services.limiter.clone()
    }

    /// The simulated Telegram, when the sim backend runs from settings.
    pub fn sim_world(&self) -> Option<SimWorld> {
        self.services.sim_world.clone()
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    pub fn supervision(&self) -> Arc<SupervisionRuntime> {
        self.services.supervision.clone()
    }

    pub fn database(&self) -> ChildRef<DatabaseActor> {
        self.database.clone()
    }

    pub fn metrics(&self) -> Metrics {
        self.services.metrics.clone()
    }
}

/// Open (and lock, for SQLite) the database, observe its statements, run
/// the migrations.
async fn open_database(
    settings: &Settings,
    metrics: &Metrics,
) -> anyhow::Result<(DatabaseConnection, Option<crate::db::local::DbFileLock>)> {
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
        settings.thresholds.slow_query.log_ms,
    );
    crate::db::migrate(&db).await?;
    metrics
        .db
        .pool_max
        .set(i64::from(settings.database.max_connections));
    tracing::info!(backend = crate::db::backend_name(&db), "database ready");
    Ok((db, db_lock))
}
