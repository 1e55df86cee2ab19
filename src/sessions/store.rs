//! The encrypted session store.
//!
//! Every write seals the blob with the keyring's active key, a fresh random
//! nonce and the associated data `(session id, account id)`
//! ([`session_aad`]), so a ciphertext copied into another row, or another
//! account's row, fails to open. Key ids are stored beside the ciphertext;
//! keys themselves come only from configuration.
//!
//! Invariants:
//! - at most one active session per account (the schema's partial unique
//!   index; [`SessionStore::activate_new`] deactivates before it inserts, in
//!   one transaction);
//! - a row is never visible half-written: inserts happen inside a
//!   transaction that seals after the row id is known.

use crate::entities::session;
use crate::security::crypto::{CryptoError, KeyId, Keyring, NONCE_LEN, Sealed, session_aad};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Failures of the session store.
#[derive(Debug, thiserror::Error)]
pub enum SessionStoreError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// The stored blob does not open: unknown key, wrong row, or tampering.
    #[error("session {session_id} cannot be decrypted: {source}")]
    Undecryptable {
        session_id: i64,
        source: CryptoError,
    },
    /// The stored row is malformed (bad key id or nonce length).
    #[error("session {0} is malformed")]
    Malformed(i64),
    #[error("session {0} not found")]
    NotFound(i64),
}

/// The active session's age and health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub session_id: i64,
    pub created_at: chrono::DateTime<chrono::FixedOffset>,
    pub error_count: i32,
}

/// A decrypted session and the row it came from.
pub struct LoadedSession {
    pub session_id: i64,
    pub account_id: i64,
    pub plaintext: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for LoadedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedSession")
            .field("session_id", &self.session_id)
            .field("account_id", &self.account_id)
            .field("plaintext_len", &self.plaintext.len())
            .finish()
    }
}

/// What one pass of [`SessionStore::rewrap_all`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RewrapReport {
    /// Rows now sealed with the active key by this run.
    pub rewrapped: u64,
    /// Rows skipped because someone rewrote them meanwhile (already current).
    pub raced: u64,
    /// Rows that could not be opened with any configured key, by id.
    pub failed: Vec<i64>,
    /// Batches (transactions) committed.
    pub batches: u64,
}

/// Reads and writes sealed session rows.
#[derive(Clone)]
pub struct SessionStore {
    db: DatabaseConnection,
    keyring: Arc<Keyring>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

/// Passes over the table before `rewrap_all` gives up on rows that keep
/// being rewritten under an old key (a node still running with it).
const MAX_REWRAP_PASSES: usize = 5;

fn now() -> sea_orm::prelude::DateTimeWithTimeZone {
    chrono::Utc::now().fixed_offset()
}

impl SessionStore {
    pub fn new(db: DatabaseConnection, keyring: Arc<Keyring>) -> Self {
        Self { db, keyring }
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Stores `plaintext` as the account's new active session inside the
    /// caller's transaction, deactivating the current one first. Returns the
    /// new row id. A session rotation rests on this: deactivating the old
    /// session and activating the new one commit together or not at all.
    pub async fn activate_new<C: ConnectionTrait>(
        &self,
        conn: &C,
        account_id: i64,
        plaintext: &[u8],
    ) -> Result<i64, SessionStoreError> {
        let at = now();
        session::Entity::update_many()
            .col_expr(session::Column::IsActive, Expr::value(false))
            .col_expr(session::Column::DeactivatedAt, Expr::value(at))
            .filter(session::Column::AccountId.eq(account_id))
            .filter(session::Column::IsActive.eq(true))
            .exec(conn)
            .await?;
        // Insert first to learn the id the associated data needs; the row is
        // sealed before the transaction commits, so no one sees it empty.
        let row = session::ActiveModel {
            account_id: Set(account_id),
            key_id: Set(self.keyring.active_id().as_str().to_owned()),
            nonce: Set(Vec::new()),
            ciphertext: Set(Vec::new()),
            is_active: Set(true),
            error_count: Set(0),
            created_at: Set(at),
            last_used_at: Set(None),
            deactivated_at: Set(None),
            ..Default::default()
        }
        .insert(conn)
        .await?;
        let sealed = self
            .keyring
            .seal(plaintext, &session_aad(row.id, account_id));
        write_sealed(conn, row.id, &sealed, None).await?;
        Ok(row.id)
    }

    /// Rotates the account's session in its own transaction (see
    /// [`SessionStore::activate_new`]).
    pub async fn rotate(
        &self,
        account_id: i64,
        plaintext: &[u8],
    ) -> Result<i64, SessionStoreError> {
        let txn = self.db.begin().await?;
        let id = self.activate_new(&txn, account_id, plaintext).await?;
        txn.commit().await?;
        Ok(id)
    }

    /// Re-seals the account's active session into a new row (fresh nonce,
    /// active key), deactivating the old one in the same transaction.
    /// `None` when the account has no active session.
    pub async fn rotate_active(&self, account_id: i64) -> Result<Option<i64>, SessionStoreError> {
        let Some(loaded) = self.load_active(account_id).await? else {
            return Ok(None);
        };
        self.rotate(account_id, &loaded.plaintext).await.map(Some)
    }

    /// Decrypts the account's active session, if it has one.
    pub async fn load_active(
        &self,
        account_id: i64,
    ) -> Result<Option<LoadedSession>, SessionStoreError> {
        let Some(row) = session::Entity::find()
            .filter(session::Column::AccountId.eq(account_id))
            .filter(session::Column::IsActive.eq(true))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let plaintext = self.open_row(&row)?;
        Ok(Some(LoadedSession {
            session_id: row.id,
            account_id: row.account_id,
            plaintext,
        }))
    }

    /// Rewrites an existing session's blob (write-through of a changed
    /// session), with a fresh nonce under the active key.
    pub async fn write(
        &self,
        session_id: i64,
        account_id: i64,
        plaintext: &[u8],
    ) -> Result<(), SessionStoreError> {
        let sealed = self
            .keyring
            .seal(plaintext, &session_aad(session_id, account_id));
        let res = session::Entity::update_many()
            .col_expr(session::Column::KeyId, Expr::value(sealed.key_id.as_str()))
            .col_expr(session::Column::Nonce, Expr::value(sealed.nonce.to_vec()))
            .col_expr(session::Column::Ciphertext, Expr::value(sealed.ciphertext))
            .col_expr(session::Column::LastUsedAt, Expr::value(now()))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::AccountId.eq(account_id))
            .exec(&self.db)
            .await?;
        if res.rows_affected == 0 {
            return Err(SessionStoreError::NotFound(session_id));
        }
        Ok(())
    }

    /// The active session's age and health, without decrypting it.
    pub async fn active_info(
        &self,
        account_id: i64,
    ) -> Result<Option<SessionInfo>, SessionStoreError> {
        Ok(session::Entity::find()
            .filter(session::Column::AccountId.eq(account_id))
            .filter(session::Column::IsActive.eq(true))
            .one(&self.db)
            .await?
            .map(|row| SessionInfo {
                session_id: row.id,
                created_at: row.created_at,
                error_count: row.error_count,
            }))
    }

    /// Counts a failed health check against a session; returns the new count.
    pub async fn record_error(&self, session_id: i64) -> Result<i32, SessionStoreError> {
        let res = session::Entity::update_many()
            .col_expr(
                session::Column::ErrorCount,
                sea_orm::sea_query::ExprTrait::add(Expr::col(session::Column::ErrorCount), 1),
            )
            .filter(session::Column::Id.eq(session_id))
            .exec(&self.db)
            .await?;
        if res.rows_affected == 0 {
            return Err(SessionStoreError::NotFound(session_id));
        }
        Ok(session::Entity::find_by_id(session_id)
            .one(&self.db)
            .await?
            .map_or(0, |row| row.error_count))
    }

    /// How many session rows each key id seals.
    pub async fn key_usage(&self) -> Result<BTreeMap<String, u64>, SessionStoreError> {
        let rows: Vec<(String, i64)> = session::Entity::find()
            .select_only()
            .column(session::Column::KeyId)
            .column_as(session::Column::Id.count(), "n")
            .group_by(session::Column::KeyId)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// Number of rows not sealed with the active key.
    pub async fn pending_rewrap(&self) -> Result<u64, SessionStoreError> {
        Ok(session::Entity::find()
            .filter(session::Column::KeyId.ne(self.keyring.active_id().as_str()))
            .count(&self.db)
            .await?)
    }

    /// Re-encrypts every row sealed with a non-active key under the active
    /// key, `batch_size` rows per transaction, in id order.
    ///
    /// Resumable: progress is the data itself (rows already under the active
    /// key are not selected again), so an interrupted run is finished by
    /// running it again. Each row is updated only if it still holds the
    /// ciphertext that was read, so a concurrent write-through is never
    /// overwritten with stale data. Rows that no configured key opens are
    /// reported and left untouched. `on_batch` sees the running totals after
    /// each committed batch and may stop the run (an operator's Ctrl-C).
    pub async fn rewrap_all(
        &self,
        batch_size: u64,
        mut on_batch: impl FnMut(&RewrapReport) -> ControlFlow<()>,
    ) -> Result<RewrapReport, SessionStoreError> {
        let active = self.keyring.active_id().as_str().to_owned();
        let mut report = RewrapReport::default();
        // A row that changed under us was rewritten by someone else; if that
        // writer still used an old key, the next pass picks it up again.
        for _pass in 0..MAX_REWRAP_PASSES {
            let raced_before = report.raced;
            let mut after_id = 0i64;
            loop {
                let rows = session::Entity::find()
                    .filter(session::Column::KeyId.ne(active.as_str()))
                    .filter(session::Column::Id.gt(after_id))
                    .order_by_asc(session::Column::Id)
                    .limit(batch_size.max(1))
                    .all(&self.db)
                    .await?;
                let Some(last) = rows.last() else { break };
                after_id = last.id;
                let txn = self.db.begin().await?;
                for row in &rows {
                    if report.failed.contains(&row.id) {
                        continue;
                    }
                    let plaintext = match self.open_row(row) {
                        Ok(p) => p,
                        Err(_) => {
                            report.failed.push(row.id);
                            continue;
                        }
                    };
                    let sealed = self
                        .keyring
                        .seal(&plaintext, &session_aad(row.id, row.account_id));
                    let old = (row.key_id.as_str(), row.nonce.as_slice());
                    if write_sealed(&txn, row.id, &sealed, Some(old)).await? {
                        report.rewrapped += 1;
                    } else {
                        report.raced += 1;
                    }
                }
                txn.commit().await?;
                report.batches += 1;
                if on_batch(&report).is_break() {
                    return Ok(report);
                }
            }
            if report.raced == raced_before {
                break;
            }
        }
        Ok(report)
    }

    /// Opens a row's blob with the keyring.
    fn open_row(&self, row: &session::Model) -> Result<Zeroizing<Vec<u8>>, SessionStoreError> {
        let key_id = KeyId::parse(&row.key_id).map_err(|_| SessionStoreError::Malformed(row.id))?;
        let nonce: [u8; NONCE_LEN] = row
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| SessionStoreError::Malformed(row.id))?;
        let sealed = Sealed {
            key_id,
            nonce,
            ciphertext: row.ciphertext.clone(),
        };
        self.keyring
            .open(&sealed, &session_aad(row.id, row.account_id))
            .map_err(|source| SessionStoreError::Undecryptable {
                session_id: row.id,
                source,
            })
    }
}

/// Writes a sealed blob into row `id`. With `expected`, only if the row still
/// holds that key id and nonce (compare-and-set); returns whether it wrote.
async fn write_sealed<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    sealed: &Sealed,
    expected: Option<(&str, &[u8])>,
) -> Result<bool, DbErr> {
    let mut update = session::Entity::update_many()
        .col_expr(session::Column::KeyId, Expr::value(sealed.key_id.as_str()))
        .col_expr(session::Column::Nonce, Expr::value(sealed.nonce.to_vec()))
        .col_expr(
            session::Column::Ciphertext,
            Expr::value(sealed.ciphertext.clone()),
        )
        .filter(session::Column::Id.eq(id));
    if let Some((key_id, nonce)) = expected {
        update = update
            .filter(session::Column::KeyId.eq(key_id))
            .filter(session::Column::Nonce.eq(nonce.to_vec()));
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}
