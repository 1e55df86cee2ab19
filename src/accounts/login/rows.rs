//! A sign-in's rows: the account row it creates (or reuses) at the first
//! step and marks signed in at the last, and its audit records of failure.

use super::LoginError;
use crate::accounts::AccountServiceError;
use crate::audit::{self, Action, Actor, AuditEntry, Outcome};
use crate::domain::AccountState;
use crate::domain::validation::PhoneNumber;
use crate::entities::{account, session};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, Set,
};

/// The owner's earlier, unfinished sign-in of the same number, to reuse;
/// [`AccountServiceError::Exists`] when the number is already one of the
/// owner's accounts.
///
/// Numbers are unique per owner, as on import: an earlier, unfinished
/// sign-in of the same number by the same owner is reused, a finished one
/// is a duplicate. Other users' accounts are not looked at, so no answer
/// depends on whether somebody else added the number.
pub(super) async fn reusable_account(
    db: &DatabaseConnection,
    owner: i64,
    digest: &str,
) -> Result<Option<i64>, LoginError> {
    let existing = account::Entity::find()
        .filter(account::Column::UserId.eq(owner))
        .filter(account::Column::PhoneDigest.eq(digest))
        .one(db)
        .await?;
    match &existing {
        Some(a) => {
            let signing_in = AccountState::parse(&a.state).is_some_and(|s| s.signing_in());
            let has_session = session::Entity::find()
                .filter(session::Column::AccountId.eq(a.id))
                .filter(session::Column::IsActive.eq(true))
                .count(db)
                .await?
                > 0;
            if !signing_in || has_session {
                return Err(AccountServiceError::Exists.into());
            }
            Ok(Some(a.id))
        }
        None => Ok(None),
    }
}

/// Inserts the account row of a new sign-in, `awaiting_code`; answers its id.
pub(super) async fn insert_awaiting_code(
    db: &DatabaseConnection,
    owner: i64,
    digest: String,
    phone: &PhoneNumber,
) -> Result<i64, LoginError> {
    let now = chrono::Utc::now().fixed_offset();
    let inserted = account::ActiveModel {
        user_id: Set(owner),
        phone_digest: Set(digest),
        phone_hint: Set(phone.masked()),
        telegram_user_id: Set(None),
        state: Set(AccountState::AwaitingCode.as_str().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await;
    match inserted {
        Ok(a) => Ok(a.id),
        Err(e) => Err(AccountServiceError::on_insert(e).into()),
    }
}

/// Marks `owner`'s account signed in: `connecting`, with its Telegram user
/// id. False when the account is gone (removed while the code was being
/// checked).
pub async fn mark_signed_in<C: ConnectionTrait>(
    conn: &C,
    owner: i64,
    account_id: i64,
    telegram_user_id: i64,
) -> Result<bool, DbErr> {
    let updated = account::Entity::update_many()
        .col_expr(
            account::Column::TelegramUserId,
            Expr::value(telegram_user_id),
        )
        .col_expr(
            account::Column::State,
            Expr::value(AccountState::Connecting.as_str()),
        )
        .col_expr(
            account::Column::UpdatedAt,
            Expr::value(chrono::Utc::now().fixed_offset()),
        )
        .filter(account::Column::Id.eq(account_id))
        .filter(account::Column::UserId.eq(owner))
        .exec(conn)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// Records a failed sign-in in the audit log (or logs that it could not).
pub(super) async fn audit_failure(
    db: &DatabaseConnection,
    owner: i64,
    account_id: i64,
    reason: &str,
) {
    audit::record_or_log(
        db,
        AuditEntry::new(Actor::User(owner), Action::AccountAdd, Outcome::Failure)
            .target(format!("account:{account_id}"))
            .detail(serde_json::json!({ "method": "sign_in", "reason": reason })),
    )
    .await;
}
