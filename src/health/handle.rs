//! The [`Health`] handle: what the checks read (settings, the
//! supervision tree, the database, the gateway's window, the limiter, the
//! metrics) and the window of [`Sample`]s they compare.

use super::resources::Resources;
use super::sample::{Sample, View};
use super::websocket::WsHealth;
use super::window::Window;
use crate::config::Settings;
use crate::db::DbHealthState;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::supervisor::SupervisionRuntime;
use sea_orm::DatabaseConnection;
use std::sync::{Arc, Mutex, PoisonError};

/// What the checks read; cheap to clone.
#[derive(Clone)]
pub struct Health {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) settings: Arc<Settings>,
    pub(super) supervision: Arc<SupervisionRuntime>,
    pub(super) db: DatabaseConnection,
    pub(super) db_health: DbHealthState,
    pub(super) ws: WsHealth,
    pub(super) limiter: RateLimiter,
    pub(super) metrics: Metrics,
    pub(super) resources: Resources,
    pub(super) window: Mutex<Window<Sample>>,
    pub(super) started: tokio::time::Instant,
    /// The root supervisor, once it runs (the liveness probe asks it).
    pub(super) root: std::sync::OnceLock<actix::Recipient<crate::supervisor::Ping>>,
    /// The shutdown began (readiness answers 503).
    pub(super) shutting_down: std::sync::atomic::AtomicBool,
}

impl Health {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: Arc<Settings>,
        supervision: Arc<SupervisionRuntime>,
        db: DatabaseConnection,
        db_health: DbHealthState,
        ws: WsHealth,
        limiter: RateLimiter,
        metrics: Metrics,
    ) -> Self {
        let window = Window::new(settings.health.window_ms);
        let health = Self {
            inner: Arc::new(Inner {
                resources: Resources::new(settings.data_dir.clone()),
                settings,
                supervision,
                db,
                db_health,
                ws,
                limiter,
                metrics,
                window: Mutex::new(window),
                started: tokio::time::Instant::now(),
                root: std::sync::OnceLock::new(),
                shutting_down: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        health.sample();
        health
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Events a windowed figure needs before it is judged.
    pub(super) fn min_volume(&self) -> u64 {
        self.inner.settings.health.min_volume
    }

    /// The window covers `health.window_ms`: windowed figures mean what
    /// they say.
    pub fn warmed_up(&self) -> bool {
        self.inner.started.elapsed() >= self.inner.settings.health.window_ms
    }

    pub(super) fn take(&self) -> Sample {
        let i = &self.inner;
        Sample::take(&i.metrics, &i.limiter, &i.resources, &i.supervision)
    }

    /// Records a snapshot for the windowed checks (the monitor calls this
    /// every sample interval); answers it.
    pub fn sample(&self) -> Sample {
        let now = self.take();
        self.inner
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(now.clone());
        now
    }

    /// `now` against the oldest snapshot kept: what the windowed checks of
    /// one report share.
    pub(super) fn view(&self, now: Sample) -> Arc<View> {
        let (age, then) = self
            .inner
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .oldest()
            .unwrap_or_default();
        Arc::new(View { now, then, age })
    }
}
