//! The database: one pool (sea-orm over sqlx), SQLite embedded by default,
//! PostgreSQL in production; migrations run at start-up. [`local`] keeps
//! an embedded database's file to one process; [`actor`] watches the
//! pool's health; [`metrics`] holds its metric families.

pub mod actor;
pub mod local;
pub mod metrics;

pub use actor::{CheckNow, DatabaseActor, DbHealth, DbHealthState};
pub use metrics::DbMetrics;

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

/// Open the pool with the `database` settings (by default: at most 20
/// connections, idle 30 s, connect 2 s).
pub async fn connect(
    url: &str,
    settings: &DatabaseSettings,
) -> Result<DatabaseConnection, DbError> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .idle_timeout(settings.idle_timeout_ms)
        .connect_timeout(settings.connect_timeout_ms)
        .acquire_timeout(settings.connect_timeout_ms)
        .max_lifetime(settings.max_lifetime_ms)
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

/// Statement kinds, the `operation` label of the query metrics.
pub const OPERATIONS: [&str; 5] = ["select", "insert", "update", "delete", "other"];

/// The statement's index in [`OPERATIONS`].
fn operation(sql: &str) -> usize {
    let head = sql.trim_start().get(..6).unwrap_or_default();
    OPERATIONS
        .iter()
        .position(|op| head.eq_ignore_ascii_case(op))
        .unwrap_or(OPERATIONS.len() - 1)
}

/// A statement's shape for a log line: its text with string and number
/// literals replaced, cut to 300 bytes. Values are bound separately and
/// never printed; this guards against literals written into the text.
pub fn statement_shape(sql: &str) -> String {
    static LITERAL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        // unwrap: a constant, valid pattern.
        regex::Regex::new(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b").unwrap()
    });
    let shaped = LITERAL.replace_all(sql, "?");
    shaped[..shaped.floor_char_boundary(300)].to_owned()
}

/// Times every statement on `db`: `tgvisor_db_query_duration_seconds`, and
/// those slower than `slow` (`thresholds.slow_query.log_ms`, 200 ms by
/// default) are counted and logged by shape, never with their values.
pub fn observe_queries(db: &mut DatabaseConnection, metrics: DbMetrics, slow: Duration) {
    // Resolved once: no label lookup per statement.
    let durations = OPERATIONS.map(|op| metrics.query_duration.with_label_values(&[op]));
    let slows = OPERATIONS.map(|op| metrics.slow_queries.with_label_values(&[op]));
    db.set_metric_callback(move |info| {
        let i = operation(&info.statement.sql);
        let op = OPERATIONS[i];
        let secs = info.elapsed.as_secs_f64();
        durations[i].observe(secs);
        if info.elapsed > slow {
            slows[i].inc();
            tracing::warn!(
                operation = op,
                elapsed_ms = secs * 1000.0,
                failed = info.failed,
                statement = %statement_shape(&info.statement.sql),
                "slow query"
            );
        }
    });
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

impl PoolStats {
    /// sqlx counts idle connections apart from the pool's size and, while
    /// a connection is handed back, the idle count can read as a wrapped
    /// negative number (seen: 2^32 - 1 idle in a pool of one). Idle is at
    /// most the size.
    fn new(size: u32, idle: usize) -> Self {
        Self {
            size,
            idle: u32::try_from(idle).unwrap_or(u32::MAX).min(size),
        }
    }
}

/// Sample the pool behind `db`.
pub fn pool_stats(db: &DatabaseConnection) -> PoolStats {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            PoolStats::new(pool.size(), pool.num_idle())
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            PoolStats::new(pool.size(), pool.num_idle())
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

#[cfg(test)]
mod shape_tests {
    use super::*;

    #[test]
    fn idle_connections_never_exceed_the_pool() {
        assert_eq!(PoolStats::new(1, usize::MAX).idle, 1);
        assert_eq!(PoolStats::new(1, u32::MAX as usize).idle, 1);
        assert_eq!(PoolStats::new(5, 2).idle, 2);
    }

    #[test]
    fn statements_are_shaped_without_literals_and_sorted_by_operation() {
        assert_eq!(
            statement_shape(
                r#"SELECT "id" FROM "users" WHERE "name" = 'alice' AND "n" > 42 LIMIT $1"#
            ),
            r#"SELECT "id" FROM "users" WHERE "name" = ? AND "n" > ? LIMIT $?"#
        );
        assert_eq!(OPERATIONS[operation("  select 1")], "select");
        assert_eq!(OPERATIONS[operation("INSERT INTO x")], "insert");
        assert_eq!(
            OPERATIONS[operation("WITH a AS (SELECT 1) SELECT * FROM a")],
            "other"
        );
        assert_eq!(statement_shape(&"é".repeat(400)).len(), 300);
    }
}
