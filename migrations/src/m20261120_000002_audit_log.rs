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
enum Users {
    Table,
    UsernameKey,
    EmailKey,
}

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
        // Usernames and e-mail addresses are unique regardless of case. The
        // case-folded keys are computed by the service (Rust's Unicode
        // lowercase), not by the database, whose lower() differs between
        // SQLite (ASCII only) and PostgreSQL (locale-dependent).
        for col in [Users::UsernameKey, Users::EmailKey] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(string_len(col, 254).default(""))
                        .to_owned(),
                )
                .await?;
        }
        let conn = manager.get_connection();
        // Rows from before this migration (ASCII is all SQLite can fold).
        conn.execute_unprepared(
            "UPDATE users SET username_key = lower(username), email_key = lower(email)",
        )
        .await?;
        for (name, col) in [
            ("users_username_fold", Users::UsernameKey),
            ("users_email_fold", Users::EmailKey),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Users::Table)
                        .col(col)
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["users_username_fold", "users_email_fold"] {
            manager
                .drop_index(Index::drop().name(name).table(Users::Table).to_owned())
                .await?;
        }
        for col in [Users::UsernameKey, Users::EmailKey] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await
    }
}
