//! The services one instance runs, built once from the settings: every
//! handle the supervision tree, the HTTP surface and the gateway share.

use crate::accounts::AccountService;
use crate::accounts::actor::AccountDeps;
use crate::accounts::login::LoginService;
use crate::accounts::pool::ClientPool;
use crate::accounts::state::StateBoard;
use crate::accounts::supervisor::AccountSupervisor;
use crate::alerts::AlertRouterHandle;
use crate::auth::AuthService;
use crate::config::{Settings, TelegramBackend};
use crate::db::DbHealthState;
use crate::events::EventLog;
use crate::health::Health;
use crate::health::websocket::WsHealth;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::ratelimit::RateLimiter;
use crate::security::SecurityContext;
use crate::sessions::SessionStore;
use crate::supervisor::{ChildSpec, SupervisionRuntime};
use crate::telegram::Backend;
use crate::telegram::grammers::GrammersBackend;
use crate::telegram::sim::{SimBackend, SimWorld};
use crate::uploads::Uploads;
use crate::ws::hub::WsHub;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// Committed events buffered for live subscribers.
const EVENT_BUS_CAPACITY: usize = 4096;

/// Every service handle; each is cheap to clone.
#[derive(Clone)]
pub(super) struct Services {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub metrics: Metrics,
    pub supervision: Arc<SupervisionRuntime>,
    pub db_health: DbHealthState,
    pub sim_world: Option<SimWorld>,
    pub limiter: RateLimiter,
    pub events: EventLog,
    pub outbox: Outbox,
    pub account_supervisor: AccountSupervisor,
    /// The account supervisor's place in the tree.
    pub account_supervisor_spec: ChildSpec,
    pub ws_hub: WsHub,
    pub ws_health: WsHealth,
    pub accounts: AccountService,
    pub uploads: Uploads,
    pub alerts: AlertRouterHandle,
    pub health: Health,
    pub auth: AuthService,
    pub logins: LoginService,
}

impl Services {
    /// Build every service. `backend` overrides the one `telegram.backend`
    /// names (tests).
    pub fn build(
        settings: Arc<Settings>,
        db: DatabaseConnection,
        metrics: Metrics,
        supervision: Arc<SupervisionRuntime>,
        backend: Option<Arc<dyn Backend>>,
    ) -> anyhow::Result<Self> {
        let db_health = DbHealthState::new(crate::db::backend_name(&db));
        // Created once: it outlives restarts of its housekeeping actor.
        let limiter = RateLimiter::new(&settings.rate_limits, metrics.rate_limits.clone());
        let security = SecurityContext::from_settings(&settings)?;
        let store = SessionStore::new(db.clone(), security.session_keys.clone());
        let events = EventLog::new(db.clone(), EVENT_BUS_CAPACITY, metrics.events.clone());
        let (backend, sim_world) = match backend {
            Some(b) => (b, None),
            None => telegram_backend(&settings)?,
        };
        tracing::info!(backend = backend.name(), "telegram backend");
        let outbox = Outbox::new(db.clone(), &settings.outbox, metrics.outbox.clone());
        let (account_supervisor_spec, account_supervisor) = account_supervisor(
            &settings,
            &db,
            &metrics,
            &supervision,
            &store,
            &backend,
            &events,
            &outbox,
            &limiter,
        );
        let ws_hub = WsHub::new(
            settings.rate_limits.websocket.connections.clone(),
            metrics.ws.clone(),
        );
        let ws_health = WsHealth::new(metrics.ws.clone());
        let accounts = AccountService::new(db.clone(), store.clone(), security.phones.clone());
        let uploads = Uploads::new(
            db.clone(),
            settings.clone(),
            limiter.clone(),
            account_supervisor.clone(),
            accounts.clone(),
            events.clone(),
            metrics.uploads.clone(),
        );
        let alerts = AlertRouterHandle::new(db.clone());
        let health = Health::new(
            settings.clone(),
            supervision.clone(),
            db.clone(),
            db_health.clone(),
            ws_health.clone(),
            limiter.clone(),
            metrics.clone(),
        );
        let auth = AuthService::from_settings(&settings, db.clone())?;
        let logins = LoginService::new(
            db.clone(),
            backend.clone(),
            accounts.clone(),
            security.phones.clone(),
            account_supervisor.board().clone(),
            events.clone(),
            &settings.telegram,
        );
        Ok(Self {
            settings,
            db,
            metrics,
            supervision,
            db_health,
            sim_world,
            limiter,
            events,
            outbox,
            account_supervisor,
            account_supervisor_spec,
            ws_hub,
            ws_health,
            accounts,
            uploads,
            alerts,
            health,
            auth,
            logins,
        })
    }
}

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

/// The supervisor of the account actors, with what every actor needs.
#[allow(clippy::too_many_arguments)]
fn account_supervisor(
    settings: &Settings,
    db: &DatabaseConnection,
    metrics: &Metrics,
    supervision: &Arc<SupervisionRuntime>,
    store: &SessionStore,
    backend: &Arc<dyn Backend>,
    events: &EventLog,
    outbox: &Outbox,
    limiter: &RateLimiter,
) -> (ChildSpec, AccountSupervisor) {
    let tg = &settings.telegram;
    let deps = |released| AccountDeps {
        db: db.clone(),
        store: store.clone(),
        backend: backend.clone(),
        metrics: metrics.telegram.clone(),
        board: StateBoard::new(metrics.telegram.accounts.clone()),
        pool: ClientPool::new(
            tg.client_pool_size as usize,
            tg.max_clients_per_user as usize,
        ),
        request_timeout: tg.request_timeout_ms,
        health_check_interval: tg.health_check_interval_ms,
        rotation_check_interval: tg.session_rotation_interval_ms,
        update_sync_interval: tg.update_state_sync_interval_ms,
        max_session_age: tg.max_session_age_ms,
        session_error_threshold: tg.session_error_threshold,
        outbox: outbox.clone(),
        limiter: limiter.clone(),
        peer_cache_ttl: settings.cache.default_ttl_ms,
        released,
    };
    AccountSupervisor::new(
        deps,
        events.clone(),
        supervision.clone(),
        &tg.account_restarts,
    )
}
