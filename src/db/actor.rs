//! The Database actor: owns the health of the pool. It pings the database on
//! an interval (each ping under a timeout), samples pool occupancy into
//! metrics, and publishes the result for `/health`.
//!
//! An unreachable database is not a crash: the actor keeps running and
//! reports `down`; the supervisor restarts it only if it fails itself.

use super::metrics::DbMetrics;
use super::{self as db, PoolStats};
use actix::prelude::*;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use serde::Serialize;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The last health check, as `/health` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DbHealth {
    pub up: bool,
    pub backend: &'static str,
    pub latency_ms: Option<f64>,
    pub pool: PoolStats,
    pub checked_at: Option<DateTime<Utc>>,
    /// The kind of the last failure (never the error text, which may name hosts).
    pub error: Option<&'static str>,
}

/// Shared between the actor (writer) and the HTTP handlers (readers).
#[derive(Clone, Debug)]
pub struct DbHealthState(Arc<RwLock<DbHealth>>);

impl DbHealthState {
    pub fn new(backend: &'static str) -> Self {
        Self(Arc::new(RwLock::new(DbHealth {
            up: true,
            backend,
            latency_ms: None,
            pool: PoolStats::default(),
            checked_at: None,
            error: None,
        })))
    }

    pub fn get(&self) -> DbHealth {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, health: DbHealth) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = health;
    }
}

/// Run a health check now and answer with its result.
#[derive(Debug, Message)]
#[rtype(result = "DbHealth")]
pub struct CheckNow;

pub struct DatabaseActor {
    db: DatabaseConnection,
    metrics: DbMetrics,
    state: DbHealthState,
    interval: Duration,
    ping_timeout: Duration,
}

impl DatabaseActor {
    pub fn new(
        db: DatabaseConnection,
        metrics: DbMetrics,
        state: DbHealthState,
        interval: Duration,
        ping_timeout: Duration,
    ) -> Self {
        Self {
            db,
            metrics,
            state,
            interval,
            ping_timeout,
        }
    }

    fn check(&self) -> impl Future<Output = DbHealth> + 'static {
        let db = self.db.clone();
        let metrics = self.metrics.clone();
        let state = self.state.clone();
        let timeout = self.ping_timeout;
        async move {
            let started = Instant::now();
            let result = tokio::time::timeout(timeout, db.ping()).await;
            let elapsed = started.elapsed();
            let error = match result {
                Ok(Ok(())) => None,
                Ok(Err(_)) => Some("ping_failed"),
                Err(_) => Some("ping_timeout"),
            };
            let pool = db::pool_stats(&db);
            metrics.up.set(i64::from(error.is_none()));
            metrics.ping_duration.observe(elapsed.as_secs_f64());
            metrics
                .pool_connections
                .with_label_values(&["idle"])
                .set(i64::from(pool.idle));
            metrics
                .pool_connections
                .with_label_values(&["in_use"])
                .set(i64::from(pool.size.saturating_sub(pool.idle)));
            if let Some(kind) = error {
                tracing::warn!(error = kind, "database health check failed");
            }
            let health = DbHealth {
                up: error.is_none(),
                backend: db::backend_name(&db),
                latency_ms: Some(elapsed.as_secs_f64() * 1000.0),
                pool,
                checked_at: Some(Utc::now()),
                error,
            };
            state.set(health.clone());
            health
        }
    }
}

impl Actor for DatabaseActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.spawn(actix::fut::wrap_future(self.check()).map(|_, _, _| ()));
        ctx.run_interval(self.interval, |act, ctx| {
            ctx.spawn(actix::fut::wrap_future(act.check()).map(|_, _, _| ()));
        });
    }
}

impl Handler<CheckNow> for DatabaseActor {
    type Result = ResponseFuture<DbHealth>;

    fn handle(&mut self, _: CheckNow, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.check())
    }
}
