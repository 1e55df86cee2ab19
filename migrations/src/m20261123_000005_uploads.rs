//! `uploads`: upload jobs. A request body is cut into 512 KiB parts as it
//! arrives and each part goes to Telegram (`saveFilePart`, or
//! `saveBigFilePart` above 10 MiB); the row keeps where the job stands, so
//! `GET /uploads/{id}` can tell, a send can reference a finished file, and a
//! restart knows which jobs it interrupted.

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
enum Uploads {
    Table,
    Id,
    AccountId,
    UserId,
    Name,
    Status,
    Size,
    Bytes,
    PartsTotal,
    PartsDone,
    Big,
    FileId,
    ErrorCode,
    Error,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Uploads::Table)
                    .col(big_pk_auto(Uploads::Id))
                    .col(big_integer(Uploads::AccountId))
                    .col(big_integer(Uploads::UserId))
                    .col(string_len(Uploads::Name, 255))
                    .col(string_len(Uploads::Status, 16))
                    .col(big_integer_null(Uploads::Size))
                    .col(big_integer(Uploads::Bytes).default(0))
                    .col(integer_null(Uploads::PartsTotal))
                    .col(integer(Uploads::PartsDone).default(0))
                    .col(boolean(Uploads::Big))
                    .col(big_integer(Uploads::FileId))
                    .col(string_len_null(Uploads::ErrorCode, 32))
                    .col(text_null(Uploads::Error))
                    .col(timestamp_with_time_zone(Uploads::CreatedAt))
                    .col(timestamp_with_time_zone(Uploads::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Uploads::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Uploads::Table, Uploads::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Start-up finds the jobs a stop interrupted.
        manager
            .create_index(
                Index::create()
                    .name("uploads_status")
                    .table(Uploads::Table)
                    .col(Uploads::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uploads_account_id")
                    .table(Uploads::Table)
                    .col(Uploads::AccountId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Uploads::Table).to_owned())
            .await
    }
}
