//! `account_update_states`: per account, Telegram's update state (pts,
//! qts, date, seq, channel pts) that the account's announced events lead
//! to. It is written in the same transaction as those events, so a restart
//! catches up from exactly what was announced.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AccountUpdateStates {
    Table,
    AccountId,
    Pts,
    Qts,
    Date,
    Seq,
    Channels,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccountUpdateStates::Table)
                    .col(big_integer(AccountUpdateStates::AccountId).primary_key())
                    .col(integer(AccountUpdateStates::Pts))
                    .col(integer(AccountUpdateStates::Qts))
                    .col(integer(AccountUpdateStates::Date))
                    .col(integer(AccountUpdateStates::Seq))
                    .col(json_binary(AccountUpdateStates::Channels))
                    .col(timestamp_with_time_zone(AccountUpdateStates::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccountUpdateStates::Table, AccountUpdateStates::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccountUpdateStates::Table).to_owned())
            .await
    }
}
