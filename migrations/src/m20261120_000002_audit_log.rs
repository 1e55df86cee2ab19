//! The audit log, and case-insensitive uniqueness of usernames and e-mails.
//!
//! The audit log: who did what security-relevant thing, when, and with what
//! outcome. Rows never hold secrets. There is no foreign key to users, so the
//! trail survives the deletion of the user it mentions.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    CreatedAt,
    ActorUserId,
    Actor,
    Action,
    Target,
    Outcome,
    Ip,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(big_pk_auto(AuditLog::Id))
                    .col(timestamp_with_time_zone(AuditLog::CreatedAt))
                    .col(big_integer_null(AuditLog::ActorUserId))
                    .col(string_len(AuditLog::Actor, 64))
                    .col(string_len(AuditLog::Action, 64))
                    .col(string_len_null(AuditLog::Target, 128))
                    .col(string_len(AuditLog::Outcome, 16))
                    .col(string_len_null(AuditLog::Ip, 64))
                    .col(json_binary_null(AuditLog::Detail))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_log_actor_user")
                    .table(AuditLog::Table)
                    .col(AuditLog::ActorUserId)
                    .col(AuditLog::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_log_action_time")
                    .table(AuditLog::Table)
                    .col(AuditLog::Action)
                    .col(AuditLog::CreatedAt)
                    .to_owned(),
            )
            .await?;
        // Usernames and e-mail addresses are unique regardless of case.
        let conn = manager.get_connection();
        conn.execute_unprepared(
            "CREATE UNIQUE INDEX users_username_lower ON users (lower(username))",
        )
        .await?;
        conn.execute_unprepared("CREATE UNIQUE INDEX users_email_lower ON users (lower(email))")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        conn.execute_unprepared("DROP INDEX users_username_lower")
            .await?;
        conn.execute_unprepared("DROP INDEX users_email_lower")
            .await?;
        manager
            .drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await
    }
}
