//! Telegram accounts as their owners see them: add (import), list, show,
//! remove. Every lookup is scoped by owner, so another user's account id
//! answers exactly like an id that does not exist.
//!
//! Importing an existing Telethon session needs no Telegram round trip and
//! is here ([`AccountService`]); signing in through Telegram (`POST
//! /accounts` with a phone number) is in [`login`]. Each account's client
//! runs in an [`actor`], under the [`supervisor`].

pub mod actor;
pub mod login;
pub mod pool;
pub mod state;
pub mod supervisor;
pub mod update_state;
pub mod updates;

use crate::audit::{self, Action, Actor, AuditEntry, Outcome};
use crate::domain::validation::{PhoneNumber, ValidationError};
use crate::entities::{account, session};
use crate::security::digest::PhoneDigester;
use crate::sessions::{ImportError, SessionData, SessionStore, SessionStoreError};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set, SqlErr, TransactionTrait,
};
use std::net::IpAddr;

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountServiceError {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("{0}")]
    Import(#[from] ImportError),
    /// Unknown id, or someone else's: the two are indistinguishable.
    #[error("no such account")]
    NotFound,
    #[error("this phone number is already added to your accounts")]
    Exists,
    /// The caller's user was deleted after its token was checked.
    #[error("the token's user no longer exists")]
    OwnerGone,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AccountServiceError {
    /// Why inserting an account row failed: the owner's duplicate number,
    /// an owner deleted meanwhile (the foreign key), or the database.
    pub fn on_insert(e: DbErr) -> Self {
        match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Self::Exists,
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => Self::OwnerGone,
            _ => e.into(),
        }
    }
}

impl From<DbErr> for AccountServiceError {
    fn from(e: DbErr) -> Self {
        Self::Internal(e.into())
    }
}

impl From<SessionStoreError> for AccountServiceError {
    fn from(e: SessionStoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// The active session of an account, without its contents.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionSummary {
    pub id: i64,
    pub created_at: chrono::DateTime<chrono::FixedOffset>,
    pub last_used_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

/// An account as the API shows it. No phone number: only its masked hint.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: i64,
    /// The phone number with all but its last two digits masked.
    pub phone_hint: String,
    pub telegram_user_id: Option<i64>,
    pub state: String,
    pub created_at: chrono::DateTime<chrono::FixedOffset>,
    pub updated_at: chrono::DateTime<chrono::FixedOffset>,
    pub session: Option<SessionSummary>,
}

impl AccountView {
    fn new(a: account::Model, s: Option<&session::Model>) -> Self {
        Self {
            id: a.id,
            phone_hint: a.phone_hint,
            telegram_user_id: a.telegram_user_id,
            state: a.state,
            created_at: a.created_at,
            updated_at: a.updated_at,
            session: s.map(|s| SessionSummary {
                id: s.id,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
            }),
        }
    }
}

/// The state of an imported account: its actor starts connecting at once.
pub const INITIAL_STATE: &str = "connecting";

/// Account operations; cheap to clone.
#[derive(Clone, Debug)]
pub struct AccountService {
    db: DatabaseConnection,
    store: SessionStore,
    phones: PhoneDigester,
}

impl AccountService {
    pub fn new(db: DatabaseConnection, store: SessionStore, phones: PhoneDigester) -> Self {
        Self { db, store, phones }
    }

    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// Adds an account from a Telethon string session. The account row, its
    /// encrypted session and the audit record commit together.
    pub async fn import(
        &self,
        owner: i64,
        phone: &str,
        session_string: &str,
        ip: Option<IpAddr>,
    ) -> Result<AccountView, AccountServiceError> {
        let phone = PhoneNumber::parse(phone)?;
        let data = SessionData::from_telethon_string(session_string)?;
        let plaintext = data.to_bytes();
        let digest = self.phones.digest(phone.as_e164());
        let now = chrono::Utc::now().fixed_offset();
        let txn = self.db.begin().await?;
        let inserted = account::ActiveModel {
            user_id: Set(owner),
            phone_digest: Set(digest),
            phone_hint: Set(phone.masked()),
            telegram_user_id: Set(data.user_id),
            state: Set(INITIAL_STATE.to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        let account = match inserted {
            Ok(a) => a,
            Err(e) => return Err(AccountServiceError::on_insert(e)),
        };
        let session_id = self
            .store
            .activate_new(&txn, account.id, &plaintext)
            .await?;
        audit::record(
            &txn,
            AuditEntry::new(Actor::User(owner), Action::AccountAdd, Outcome::Success)
                .target(format!("account:{}", account.id))
                .ip(ip)
                .detail(serde_json::json!({ "method": "import", "session_id": session_id })),
        )
        .await?;
        txn.commit().await?;
        tracing::info!(account_id = account.id, session_id, "account imported");
        self.get(owner, account.id).await
    }

    /// The owner's accounts, oldest first.
    pub async fn list(&self, owner: i64) -> Result<Vec<AccountView>, AccountServiceError> {
        let accounts = account::Entity::find()
            .filter(account::Column::UserId.eq(owner))
            .order_by_asc(account::Column::Id)
            .all(&self.db)
            .await?;
        let ids: Vec<i64> = accounts.iter().map(|a| a.id).collect();
        let sessions = session::Entity::find()
            .filter(session::Column::AccountId.is_in(ids))
            .filter(session::Column::IsActive.eq(true))
            .all(&self.db)
            .await?;
        Ok(accounts
            .into_iter()
            .map(|a| {
                let s = sessions.iter().find(|s| s.account_id == a.id);
                AccountView::new(a, s)
            })
            .collect())
    }

    /// The account if `owner` owns it; otherwise [`AccountServiceError::NotFound`].
    pub async fn owned(&self, owner: i64, id: i64) -> Result<account::Model, AccountServiceError> {
        account::Entity::find_by_id(id)
            .filter(account::Column::UserId.eq(owner))
            .one(&self.db)
            .await?
            .ok_or(AccountServiceError::NotFound)
    }

    pub async fn get(&self, owner: i64, id: i64) -> Result<AccountView, AccountServiceError> {
        let account = self.owned(owner, id).await?;
        let session = session::Entity::find()
            .filter(session::Column::AccountId.eq(id))
            .filter(session::Column::IsActive.eq(true))
            .one(&self.db)
            .await?;
        Ok(AccountView::new(account, session.as_ref()))
    }

    /// Removes the account and destroys its sessions (all of them, not only
    /// the active one: old rows hold auth keys too).
    pub async fn remove(
        &self,
        owner: i64,
        id: i64,
        ip: Option<IpAddr>,
    ) -> Result<(), AccountServiceError> {
        let txn = self.db.begin().await?;
        // Writes only, ownership in the WHERE clause: no read-then-write
        // (which SQLite can refuse under concurrent commits).
        let sessions = session::Entity::delete_many()
            .filter(
                session::Column::AccountId.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(account::Column::Id)
                        .from(account::Entity)
                        .and_where(account::Column::Id.eq(id))
                        .and_where(account::Column::UserId.eq(owner))
                        .to_owned(),
                ),
            )
            .exec(&txn)
            .await?;
        let removed = account::Entity::delete_many()
            .filter(account::Column::Id.eq(id))
            .filter(account::Column::UserId.eq(owner))
            .exec(&txn)
            .await?;
        if removed.rows_affected == 0 {
            return Err(AccountServiceError::NotFound);
        }

        audit::record(
            &txn,
            AuditEntry::new(Actor::User(owner), Action::AccountRemove, Outcome::Success)
                .target(format!("account:{}", id))
                .ip(ip)
                .detail(serde_json::json!({ "sessions_destroyed": sessions.rows_affected })),
        )
        .await?;
        txn.commit().await?;
        tracing::info!(account_id = id, "account removed");
        Ok(())
    }
}

/// Records the Telegram user id behind an account once a client has seen it
/// (imports may not carry it).
pub(crate) async fn record_telegram_user<C: sea_orm::ConnectionTrait>(
    db: &C,
    account_id: i64,
    telegram_user_id: i64,
) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(
            account::Column::TelegramUserId,
            sea_orm::sea_query::Expr::value(telegram_user_id),
        )
        .filter(account::Column::Id.eq(account_id))
        .filter(account::Column::TelegramUserId.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes a removed account's events and their dedupe keys, so nothing of
/// it outlives it (ids of deleted rows may be reused by SQLite). Its update
/// state went with the account row.
pub async fn delete_events(db: &DatabaseConnection, account_id: i64) -> Result<u64, DbErr> {
    let topic = crate::events::account_topic(account_id);
    let txn = db.begin().await?;
    let res = crate::entities::event::Entity::delete_many()
        .filter(crate::entities::event::Column::Topic.eq(&topic))
        .exec(&txn)
        .await?;
    crate::events::dedupe::forget(&txn, &topic).await?;
    txn.commit().await?;
    Ok(res.rows_affected)
}
