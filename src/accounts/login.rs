//! Signing an account in over the API: phone → code → (2FA password).
//!
//! Telegram's login token cannot be persisted, so a pending sign-in is the
//! live client that asked for the code, kept in memory: bounded in number
//! (per node and per user), in time (`telegram.pending_login_ttl_ms`) and in
//! wrong answers (`telegram.login_attempts`). The account row exists from
//! the first step (`awaiting_code`), so the steps have an id to address; an
//! abandoned sign-in leaves it `login_expired`, and asking for a code again
//! for the same number reuses it.
//!
//! A pending sign-in is taken out of the table while a step runs, so two
//! concurrent submissions cannot use one code twice.

use super::supervisor::AccountSupervisor;
use super::{AccountService, AccountServiceError, AccountView};
use crate::audit::{self, Action, Actor, AuditEntry, Outcome};
use crate::domain::AccountState;
use crate::domain::validation::{PhoneNumber, ValidationError};
use crate::entities::{account, session};
use crate::events::{EventLog, account_topic};
use crate::security::digest::PhoneDigester;
use crate::telegram::{Backend, LoginStep, PendingCode, PendingPassword, TgError};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, Set, TransactionTrait,
};
use secrecy::SecretString;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Why a sign-in step was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Account(#[from] AccountServiceError),
    #[error("no sign-in is waiting for this account; start again with POST /api/v1/accounts")]
    NotPending,
    #[error("this sign-in step is already being submitted")]
    Busy,
    #[error("this sign-in waits for the {expected}, not the {got}")]
    WrongStep {
        expected: &'static str,
        got: &'static str,
    },
    #[error("too many sign-ins are waiting; try again later")]
    TooManyPending,
    #[error("the code is wrong ({attempts_left} attempts left)")]
    CodeInvalid { attempts_left: u32 },
    #[error("the password is wrong ({attempts_left} attempts left)")]
    PasswordInvalid { attempts_left: u32 },
    #[error("too many wrong answers; start the sign-in again")]
    TooManyAttempts,
    #[error("the code has expired; start the sign-in again")]
    Expired,
    #[error("Telegram refused: {0}")]
    Telegram(TgError),
}

impl From<DbErr> for LoginError {
    fn from(e: DbErr) -> Self {
        Self::Account(e.into())
    }
}

impl From<ValidationError> for LoginError {
    fn from(e: ValidationError) -> Self {
        Self::Account(e.into())
    }
}

/// What the caller does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// Submit the code Telegram sent (`POST /accounts/{id}/login/code`).
    Code,
    /// Submit the 2FA password (`POST /accounts/{id}/login/password`).
    Password,
    /// Signed in; the account is connecting.
    Done,
}

/// The answer to a sign-in step.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LoginProgress {
    pub account: AccountView,
    pub next_step: NextStep,
    /// The 2FA password hint, when the next step is the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_hint: Option<String>,
    /// How long the pending sign-in waits for the next step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_ms: Option<u64>,
}

enum Step {
    Code(Box<dyn PendingCode>),
    Password {
        pending: Box<dyn PendingPassword>,
        hint: Option<String>,
    },
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::Code(_) => "code",
            Step::Password { .. } => "password",
        }
    }
}

struct Pending {
    owner: i64,
    /// None while a step is being submitted.
    step: Option<Step>,
    expires: Instant,
    attempts_left: u32,
    /// Tells this sign-in apart from a later one for the same account.
    generation: u64,
}

struct Limits {
    ttl: Duration,
    max_pending: usize,
    max_per_user: usize,
    attempts: u32,
    request_timeout: Duration,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct LoginService {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    backend: Arc<dyn Backend>,
    accounts: AccountService,
    phones: PhoneDigester,
    manager: AccountSupervisor,
    events: EventLog,
    limits: Limits,
    pending: Mutex<HashMap<i64, Pending>>,
    next_generation: Mutex<u64>,
    /// Expiry timers run here (not on the HTTP worker that started them).
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for LoginService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginService(..)")
    }
}

impl LoginService {
    /// Call inside the runtime the expiry timers should run on.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: DatabaseConnection,
        backend: Arc<dyn Backend>,
        accounts: AccountService,
        phones: PhoneDigester,
        manager: AccountSupervisor,
        events: EventLog,
        settings: &crate::config::TelegramSettings,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                backend,
                accounts,
                phones,
                manager,
                events,
                limits: Limits {
                    ttl: Duration::from_millis(settings.pending_login_ttl_ms),
                    max_pending: settings.max_pending_logins as usize,
                    max_per_user: settings.max_pending_logins_per_user as usize,
                    attempts: settings.login_attempts.max(1),
                    request_timeout: Duration::from_millis(settings.request_timeout_ms),
                },
                pending: Mutex::default(),
                next_generation: Mutex::new(0),
                runtime: tokio::runtime::Handle::current(),
            }),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Pending>> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops the account's pending sign-in, if any (the account was removed).
    pub fn cancel(&self, account_id: i64) {
        self.table().remove(&account_id);
    }

    /// How many sign-ins wait on this node.
    pub fn pending_count(&self) -> usize {
        self.table().len()
    }

    /// Step 1: ask Telegram for a code.
    pub async fn start(
        &self,
        owner: i64,
        phone: &str,
        ip: Option<IpAddr>,
    ) -> Result<LoginProgress, LoginError> {
        let phone = PhoneNumber::parse(phone)?;
        let digest = self.inner.phones.digest(phone.as_e164());
        // Numbers are unique per owner, as on import: an earlier, unfinished
        // sign-in of the same number by the same owner is reused, a finished
        // one is a duplicate. Other users' accounts are not looked at, so
        // no answer depends on whether somebody else added the number.
        let existing = account::Entity::find()
            .filter(account::Column::UserId.eq(owner))
            .filter(account::Column::PhoneDigest.eq(&digest))
            .one(&self.inner.db)
            .await?;
        let reuse = match &existing {
            Some(a) => {
                let signing_in = AccountState::parse(&a.state).is_some_and(|s| s.signing_in());
                let has_session = session::Entity::find()
                    .filter(session::Column::AccountId.eq(a.id))
                    .filter(session::Column::IsActive.eq(true))
                    .count(&self.inner.db)
                    .await?
                    > 0;
                if !signing_in || has_session {
                    return Err(AccountServiceError::Exists.into());
                }
                Some(a.id)
            }
            None => None,
        };
        {
            let table = self.table();
            let replacing = reuse.is_some_and(|id| table.contains_key(&id));
            let total = table.len() - usize::from(replacing);
            let mine = table.values().filter(|p| p.owner == owner).count() - usize::from(replacing);
            if total >= self.inner.limits.max_pending || mine >= self.inner.limits.max_per_user {
                return Err(LoginError::TooManyPending);
            }
        }
        let timeout = self.inner.limits.request_timeout;
        let pending = tokio::time::timeout(timeout, self.inner.backend.request_code(&phone))
            .await
            .map_err(|_| LoginError::Telegram(TgError::Timeout(timeout)))?
            .map_err(LoginError::Telegram)?;

        let account_id = match reuse {
            Some(id) => id,
            None => {
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
                .insert(&self.inner.db)
                .await;
                match inserted {
                    Ok(a) => a.id,
                    Err(e) => return Err(AccountServiceError::on_insert(e).into()),
                }
            }
        };
        self.insert(account_id, owner, Step::Code(pending));
        self.set_state(
            account_id,
            AccountState::AwaitingCode,
            serde_json::json!({}),
        )
        .await;
        tracing::info!(
            account_id,
            phone = %phone.masked(),
            client_ip = ?ip,
            "sign-in started: code sent"
        );
        Ok(LoginProgress {
            account: self.inner.accounts.get(owner, account_id).await?,
            next_step: NextStep::Code,
            password_hint: None,
            expires_in_ms: Some(self.inner.limits.ttl.as_millis() as u64),
        })
    }

    /// Step 2: the code from the phone.
    pub async fn submit_code(
        &self,
        owner: i64,
        account_id: i64,
        code: &str,
        ip: Option<IpAddr>,
    ) -> Result<LoginProgress, LoginError> {
        let code = code.trim();
        if code.is_empty() || code.len() > 16 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::new(
                "code",
                "invalid",
                "the code is the digits Telegram sent",
            )
            .into());
        }
        let (step, generation) = self.take(owner, account_id, "code")?;
        let Step::Code(pending) = step else {
            unreachable!("take checked the step")
        };
        let timeout = self.inner.limits.request_timeout;
        let result = match tokio::time::timeout(timeout, pending.submit_code(code)).await {
            Ok(r) => r,
            Err(_) => Err((TgError::Timeout(timeout), None)),
        };
        match result {
            Ok(step) => self.advance(owner, account_id, generation, step, ip).await,
            Err((err, again)) => {
                self.refused(owner, account_id, generation, err, again.map(Step::Code))
                    .await
            }
        }
    }

    /// Step 3 (2FA accounts): the password.
    pub async fn submit_password(
        &self,
        owner: i64,
        account_id: i64,
        password: SecretString,
        ip: Option<IpAddr>,
    ) -> Result<LoginProgress, LoginError> {
        let (step, generation) = self.take(owner, account_id, "password")?;
        let Step::Password { pending, hint } = step else {
            unreachable!("take checked the step")
        };
        let timeout = self.inner.limits.request_timeout;
        let result = match tokio::time::timeout(timeout, pending.submit_password(password)).await {
            Ok(r) => r,
            Err(_) => Err((TgError::Timeout(timeout), None)),
        };
        match result {
            Ok(step) => self.advance(owner, account_id, generation, step, ip).await,
            Err((err, again)) => {
                let again = again.map(|pending| Step::Password { pending, hint });
                self.refused(owner, account_id, generation, err, again)
                    .await
            }
        }
    }

    fn insert(&self, account_id: i64, owner: i64, step: Step) {
        let generation = {
            let mut g = self
                .inner
                .next_generation
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *g += 1;
            *g
        };
        let ttl = self.inner.limits.ttl;
        self.table().insert(
            account_id,
            Pending {
                owner,
                step: Some(step),
                expires: Instant::now() + ttl,
                attempts_left: self.inner.limits.attempts,
                generation,
            },
        );
        let this = self.clone();
        self.inner.runtime.spawn(async move {
            tokio::time::sleep(ttl).await;
            this.expire(account_id, generation).await;
        });
    }

    async fn expire(&self, account_id: i64, generation: u64) {
        let removed = {
            let mut table = self.table();
            match table.get(&account_id) {
                Some(p) if p.generation == generation && p.step.is_some() => {
                    table.remove(&account_id)
                }
                _ => None,
            }
        };
        if removed.is_some() {
            tracing::info!(account_id, "pending sign-in expired");
            self.set_state(
                account_id,
                AccountState::LoginExpired,
                serde_json::json!({ "reason": "timeout" }),
            )
            .await;
        }
    }

    /// Takes the pending step out of the table for the duration of a submission.
    fn take(
        &self,
        owner: i64,
        account_id: i64,
        want: &'static str,
    ) -> Result<(Step, u64), LoginError> {
        let mut table = self.table();
        let Some(p) = table.get_mut(&account_id) else {
            return Err(LoginError::NotPending);
        };
        if p.owner != owner {
            // Someone else's sign-in answers like no sign-in at all.
            return Err(LoginError::NotPending);
        }
        if p.expires <= Instant::now() {
            return Err(LoginError::Expired);
        }
        let Some(step) = p.step.take() else {
            return Err(LoginError::Busy);
        };
        if step.name() != want {
            let expected = step.name();
            p.step = Some(step);
            return Err(LoginError::WrongStep {
                expected,
                got: want,
            });
        }
        Ok((step, p.generation))
    }

    /// Puts a step back (after a wrong answer) if the sign-in is still the same one.
    fn put_back(&self, account_id: i64, generation: u64, step: Step) -> Option<u32> {
        let mut table = self.table();
        let p = table.get_mut(&account_id)?;
        if p.generation != generation {
            return None;
        }
        p.attempts_left = p.attempts_left.saturating_sub(1);
        if p.attempts_left == 0 {
            table.remove(&account_id);
            return None;
        }
        p.step = Some(step);
        Some(p.attempts_left)
    }

    fn drop_pending(&self, account_id: i64, generation: u64) {
        let mut table = self.table();
        if table
            .get(&account_id)
            .is_some_and(|p| p.generation == generation)
        {
            table.remove(&account_id);
        }
    }

    async fn refused(
        &self,
        owner: i64,
        account_id: i64,
        generation: u64,
        err: TgError,
        again: Option<Step>,
    ) -> Result<LoginProgress, LoginError> {
        let wrong_answer = matches!(err, TgError::CodeInvalid | TgError::PasswordInvalid);
        match (again, wrong_answer) {
            (Some(step), true) => {
                let password = matches!(step, Step::Password { .. });
                match self.put_back(account_id, generation, step) {
                    Some(attempts_left) => Err(if password {
                        LoginError::PasswordInvalid { attempts_left }
                    } else {
                        LoginError::CodeInvalid { attempts_left }
                    }),
                    None => {
                        self.audit_failure(owner, account_id, "too_many_attempts")
                            .await;
                        self.set_state(
                            account_id,
                            AccountState::LoginExpired,
                            serde_json::json!({ "reason": "too_many_attempts" }),
                        )
                        .await;
                        Err(LoginError::TooManyAttempts)
                    }
                }
            }
            (Some(step), false) if err.is_transient() => {
                // Network trouble or a flood wait: the same step may be retried,
                // and it does not count as a wrong answer.
                let mut table = self.table();
                if let Some(p) = table.get_mut(&account_id)
                    && p.generation == generation
                {
                    p.step = Some(step);
                }
                Err(LoginError::Telegram(err))
            }
            _ => {
                self.drop_pending(account_id, generation);
                let reason = err.code();
                self.audit_failure(owner, account_id, reason).await;
                self.set_state(
                    account_id,
                    AccountState::LoginExpired,
                    serde_json::json!({ "reason": reason }),
                )
                .await;
                Err(match err {
                    TgError::CodeExpired => LoginError::Expired,
                    TgError::CodeInvalid | TgError::PasswordInvalid => LoginError::TooManyAttempts,
                    other => LoginError::Telegram(other),
                })
            }
        }
    }

    async fn advance(
        &self,
        owner: i64,
        account_id: i64,
        generation: u64,
        step: LoginStep,
        ip: Option<IpAddr>,
    ) -> Result<LoginProgress, LoginError> {
        match step {
            LoginStep::PasswordNeeded { hint, pending } => {
                {
                    let mut table = self.table();
                    match table.get_mut(&account_id) {
                        Some(p) if p.generation == generation => {
                            p.step = Some(Step::Password {
                                pending,
                                hint: hint.clone(),
                            });
                            p.attempts_left = self.inner.limits.attempts;
                        }
                        _ => return Err(LoginError::NotPending),
                    }
                }
                self.set_state(
                    account_id,
                    AccountState::AwaitingPassword,
                    serde_json::json!({}),
                )
                .await;
                Ok(LoginProgress {
                    account: self.inner.accounts.get(owner, account_id).await?,
                    next_step: NextStep::Password,
                    password_hint: hint,
                    expires_in_ms: None,
                })
            }
            LoginStep::Done { session, me } => {
                self.drop_pending(account_id, generation);
                let plaintext = session.to_bytes();
                let txn = self.inner.db.begin().await?;
                let updated = account::Entity::update_many()
                    .col_expr(account::Column::TelegramUserId, Expr::value(me.id))
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
                    .exec(&txn)
                    .await?;
                if updated.rows_affected == 0 {
                    // Removed while the code was being checked.
                    return Err(AccountServiceError::NotFound.into());
                }
                let session_id = self
                    .inner
                    .accounts
                    .store()
                    .activate_new(&txn, account_id, &plaintext)
                    .await
                    .map_err(AccountServiceError::from)?;
                audit::record(
                    &txn,
                    AuditEntry::new(Actor::User(owner), Action::AccountAdd, Outcome::Success)
                        .target(format!("account:{account_id}"))
                        .ip(ip)
                        .detail(
                            serde_json::json!({ "method": "sign_in", "session_id": session_id }),
                        ),
                )
                .await?;
                txn.commit().await?;
                tracing::info!(account_id, session_id, "signed in");
                if let Err(e) = self.inner.manager.start(account_id).await {
                    tracing::error!(account_id, error = %e, "starting the account actor failed");
                }
                Ok(LoginProgress {
                    account: self.inner.accounts.get(owner, account_id).await?,
                    next_step: NextStep::Done,
                    password_hint: None,
                    expires_in_ms: None,
                })
            }
        }
    }

    async fn audit_failure(&self, owner: i64, account_id: i64, reason: &str) {
        audit::record_or_log(
            &self.inner.db,
            AuditEntry::new(Actor::User(owner), Action::AccountAdd, Outcome::Failure)
                .target(format!("account:{account_id}"))
                .detail(serde_json::json!({ "method": "sign_in", "reason": reason })),
        )
        .await;
    }

    /// The sign-in writes its states on the account's topic through the
    /// topic's one writer (no actor runs yet), and waits until they are stored.
    async fn set_state(&self, account_id: i64, state: AccountState, detail: serde_json::Value) {
        let previous = self.inner.manager.board().set(account_id, state);
        let data = super::state::state_event(account_id, state, previous, detail);
        let writer = self.inner.events.writer(&account_topic(account_id));
        // Waits for the commit: the answer to this step reads the row back.
        if writer
            .commit_state(account_id, state.as_str(), data)
            .await
            .is_err()
        {
            tracing::warn!(account_id, "state event dropped: writer stopped");
        }
    }
}
