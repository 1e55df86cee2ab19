//! `alerts`: what the alert router knows about each alert, so a restart
//! neither pages again for what it already sent nor forgets what fires.
//! One row per firing episode of a fingerprint; a fingerprint fires again
//! (a new row) only after its last episode was resolved.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
    Fingerprint,
    Name,
    Severity,
    Summary,
    Labels,
    Status,
    Tier,
    Notifications,
    StartedAt,
    UpdatedAt,
    LastNotifiedAt,
    NextNotifyAt,
    AckedAt,
    AckedBy,
    ResolvedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alerts::Table)
                    .col(big_pk_auto(Alerts::Id))
                    .col(string_len(Alerts::Fingerprint, 255))
                    .col(string_len(Alerts::Name, 128))
                    .col(string_len(Alerts::Severity, 8))
                    .col(text(Alerts::Summary))
                    .col(text(Alerts::Labels))
                    .col(string_len(Alerts::Status, 16))
                    .col(integer(Alerts::Tier).default(0))
                    .col(integer(Alerts::Notifications).default(0))
                    .col(timestamp_with_time_zone(Alerts::StartedAt))
                    .col(timestamp_with_time_zone(Alerts::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Alerts::LastNotifiedAt))
                    .col(timestamp_with_time_zone_null(Alerts::NextNotifyAt))
                    .col(timestamp_with_time_zone_null(Alerts::AckedAt))
                    .col(big_integer_null(Alerts::AckedBy))
                    .col(timestamp_with_time_zone_null(Alerts::ResolvedAt))
                    .to_owned(),
            )
            .await?;
        // The router loads what is not resolved; the API lists by status.
        manager
            .create_index(
                Index::create()
                    .name("alerts_status_fingerprint")
                    .table(Alerts::Table)
                    .col(Alerts::Status)
                    .col(Alerts::Fingerprint)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alerts::Table).to_owned())
            .await
    }
}
