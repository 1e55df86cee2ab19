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
//!
//! This file holds the steps; [`pending`] the table of pending sign-ins,
//! [`rows`] what a sign-in stores, [`progress`] what a step answers.
//! Completing a sign-in (storing its session, starting its actor) spans
//! services and is the application's (`crate::app::sign_in`).

mod pending;
pub mod progress;
pub mod rows;

pub use progress::{LoginError, LoginProgress, NextStep, SignedIn, StepOutcome};
pub use rows::mark_signed_in;

use super::AccountService;
use super::state::StateBoard;
use crate::domain::AccountState;
use crate::domain::validation::{PhoneNumber, ValidationError};
use crate::events::{EventLog, account_topic};
use crate::security::digest::PhoneDigester;
use crate::telegram::{Backend, LoginStep, TgError};
use pending::{Pending, PendingTable, Step, TakeRefused};
use sea_orm::DatabaseConnection;
use secrecy::SecretString;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

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
    /// Where the sign-in's states are shown (no actor runs yet).
    board: StateBoard,
    events: EventLog,
    limits: Limits,
    pending: Mutex<PendingTable>,
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
        board: StateBoard,
        events: EventLog,
        settings: &crate::config::TelegramSettings,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                backend,
                accounts,
                phones,
                board,
                events,
                limits: Limits {
                    ttl: settings.pending_login_ttl_ms,
                    max_pending: settings.max_pending_logins as usize,
                    max_per_user: settings.max_pending_logins_per_user as usize,
                    attempts: settings.login_attempts.max(1),
                    request_timeout: settings.request_timeout_ms,
                },
                pending: Mutex::default(),
                next_generation: Mutex::new(0),
                runtime: tokio::runtime::Handle::current(),
            }),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, PendingTable> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops the account's pending sign-in, if any (the account was removed).
    pub fn cancel(&self, account_id: i64) {
        self.table().remove(account_id);
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
        let reuse = rows::reusable_account(&self.inner.db, owner, &digest).await?;
        {
            let table = self.table();
            let replacing = reuse.is_some_and(|id| table.contains(id));
            let total = table.len() - usize::from(replacing);
            let mine = table.count_of(owner) - usize::from(replacing);
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
            None => rows::insert_awaiting_code(&self.inner.db, owner, digest, &phone).await?,
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
    ) -> Result<StepOutcome, LoginError> {
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
    ) -> Result<StepOutcome, LoginError> {
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
        let removed = self.table().remove_idle(account_id, generation);
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
        self.table()
            .take(owner, account_id, want)
            .map_err(|refused| match refused {
                TakeRefused::NotPending => LoginError::NotPending,
                TakeRefused::Expired => LoginError::Expired,
                TakeRefused::Busy => LoginError::Busy,
                TakeRefused::WrongStep { expected } => LoginError::WrongStep {
                    expected,
                    got: want,
                },
            })
    }

    async fn refused(
        &self,
        owner: i64,
        account_id: i64,
        generation: u64,
        err: TgError,
        again: Option<Step>,
    ) -> Result<StepOutcome, LoginError> {
        let wrong_answer = matches!(err, TgError::CodeInvalid | TgError::PasswordInvalid);
        match (again, wrong_answer) {
            (Some(step), true) => {
                let password = matches!(step, Step::Password { .. });
                let left = self.table().put_back(account_id, generation, step);
                match left {
                    Some(attempts_left) => Err(if password {
                        LoginError::PasswordInvalid { attempts_left }
                    } else {
                        LoginError::CodeInvalid { attempts_left }
                    }),
                    None => {
                        rows::audit_failure(&self.inner.db, owner, account_id, "too_many_attempts")
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
                self.table().restore(account_id, generation, step);
                Err(LoginError::Telegram(err))
            }
            _ => {
                self.table().drop_generation(account_id, generation);
                let reason = err.code();
                rows::audit_failure(&self.inner.db, owner, account_id, reason).await;
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
    ) -> Result<StepOutcome, LoginError> {
        match step {
            LoginStep::PasswordNeeded { hint, pending } => {
                let next = Step::Password {
                    pending,
                    hint: hint.clone(),
                };
                let attempts = self.inner.limits.attempts;
                if !self.table().advance(account_id, generation, next, attempts) {
                    return Err(LoginError::NotPending);
                }
                self.set_state(
                    account_id,
                    AccountState::AwaitingPassword,
                    serde_json::json!({}),
                )
                .await;
                Ok(StepOutcome::Progress(LoginProgress {
                    account: self.inner.accounts.get(owner, account_id).await?,
                    next_step: NextStep::Password,
                    password_hint: hint,
                    expires_in_ms: None,
                }))
            }
            LoginStep::Done { session, me } => {
                self.table().drop_generation(account_id, generation);
                Ok(StepOutcome::SignedIn(SignedIn {
                    owner,
                    account_id,
                    session,
                    telegram_user_id: me.id,
                    ip,
                }))
            }
        }
    }

    /// The sign-in writes its states on the account's topic through the
    /// topic's one writer (no actor runs yet), and waits until they are stored.
    async fn set_state(&self, account_id: i64, state: AccountState, detail: serde_json::Value) {
        let previous = self.inner.board.set(account_id, state);
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
