//! The database: one pool (sea-orm over sqlx), SQLite embedded by default,
//! PostgreSQL in production; migrations run at start-up.

use crate::config::DatabaseSettings;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr};
use std::time::Duration;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("could not connect to the database: {0}")]
    Connect(#[source] DbErr),
    #[error("database migration failed: {0}")]
    Migrate(#[source] DbErr),
}

/// Open the pool with the seed's settings (max 20, idle 30 s, connect 2 s).
pub async fn connect(
    url: &str,
    settings: &DatabaseSettings,
) -> Result<DatabaseConnection, DbError> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .idle_timeout(Duration::from_millis(settings.idle_timeout_ms))
        .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .acquire_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .max_lifetime(Duration::from_millis(settings.max_lifetime_ms))
        // Statements are logged by our own slow-query accounting, never with values.
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            // FULL: every commit is on disk before it returns, so a 202 from
            // the outbox survives a power cut too, not only a crash (NORMAL
            // in WAL mode may lose the last commits). The outbox's group
            // commit keeps that to one fsync per batch.
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
    Database::connect(opts).await.map_err(DbError::Connect)
}

/// Bring the schema up to date.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbError> {
    Migrator::up(db, None).await.map_err(DbError::Migrate)
}

/// Pool occupancy, for metrics and health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}

/// Sample the pool behind `db`.
pub fn pool_stats(db: &DatabaseConnection) -> PoolStats {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            PoolStats {
                size: pool.size(),
                idle: pool.num_idle() as u32,
            }
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            PoolStats {
                size: pool.size(),
                idle: pool.num_idle() as u32,
            }
        }
        _ => PoolStats::default(),
    }
}

/// "sqlite" or "postgres", for logs and health.
pub fn backend_name(db: &DatabaseConnection) -> &'static str {
    match db.get_database_backend() {
        DbBackend::Postgres => "postgres",
        DbBackend::Sqlite => "sqlite",
        _ => "other",
    }
}
