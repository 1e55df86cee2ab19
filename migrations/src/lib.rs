//! The database schema, one migration per file, run at start-up.

pub use sea_orm_migration::prelude::*;

mod m20261120_000001_core;
mod m20261120_000002_audit_log;
mod m20261121_000003_outbox;
mod m20261122_000004_event_horizons;
mod m20261123_000005_uploads;
mod m20261124_000006_alerts;
mod m20261125_000007_alert_notified;
mod m20261126_000008_event_keys;
mod m20261126_000009_account_update_states;

/// Runs every migration in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261120_000001_core::Migration),
            Box::new(m20261120_000002_audit_log::Migration),
            Box::new(m20261121_000003_outbox::Migration),
            Box::new(m20261122_000004_event_horizons::Migration),
            Box::new(m20261123_000005_uploads::Migration),
            Box::new(m20261124_000006_alerts::Migration),
            Box::new(m20261125_000007_alert_notified::Migration),
            Box::new(m20261126_000008_event_keys::Migration),
            Box::new(m20261126_000009_account_update_states::Migration),
        ]
    }
}
