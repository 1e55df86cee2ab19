//! `event_horizons`: per topic, the newest offset pruned from the event
//! log. A subscriber resuming from an offset below it has missed events the
//! log no longer holds, and must resync.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventHorizons {
    Table,
    Topic,
    PrunedThrough,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventHorizons::Table)
                    .col(string_len(EventHorizons::Topic, 64).primary_key())
                    .col(big_integer(EventHorizons::PrunedThrough))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventHorizons::Table).to_owned())
            .await
    }
}
