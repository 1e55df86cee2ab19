//! `AccountSupervisor`: a dynamic supervisor (`root/sessions`) with one
//! [`AccountActor`] per active account, started at boot from the database
//! and whenever an account is added; and the handle through which the HTTP
//! layer (and uploads) reach an account's actor.
//!
//! Restart intensity is counted per account: an account that keeps
//! crashing is given up alone (`failed`), its neighbours carry on.

use super::actor::{AccountActor, AccountDeps, CallError, History, Rotate};
use super::state::StateBoard;
use crate::config::AccountRestartSettings;
use crate::domain::AccountState;
use crate::domain::RotationReason;
use crate::domain::validation::ChatRef;
use crate::entities::account;
use crate::events::{EventLog, account_topic};
use crate::supervisor::{
    AddChild, AddChildError, Backoff, ChildRef, ChildSpec, Handover, Intensity, RemoveChild,
    Restart, SupervisionEvent, SupervisionEventKind, SupervisionPolicy, SupervisionRuntime,
    Supervisor, SupervisorSpec,
};
use crate::telegram::{Message, TgError};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// The supervision policy of account actors (`telegram.account_restarts`).
fn account_policy(cfg: &AccountRestartSettings) -> SupervisionPolicy {
    SupervisionPolicy {
        max_restarts: cfg.max_restarts,
        period: cfg.period_ms,
        backoff: Backoff {
            base: cfg.backoff_base_ms,
            factor: 2.0,
            cap: cfg.backoff_cap_ms.max(cfg.backoff_base_ms),
            jitter: 0.2,
        },
        reset_after: Duration::from_secs(300),
        shutdown_timeout: Duration::from_secs(10),
    }
}

/// The child name of an account's actor.
fn child_name(account_id: i64) -> String {
    format!("account-{account_id}")
}

/// Cheap to clone.
#[derive(Clone)]
pub struct AccountSupervisor {
    inner: Arc<Inner>,
}

struct Inner {
    supervisor: ChildRef<Supervisor>,
    deps: Arc<AccountDeps>,
    events: EventLog,
    actors: Mutex<HashMap<i64, ChildRef<AccountActor>>>,
    /// Accounts whose actors ended for good, for `account-releases`.
    released: Handover<mpsc::UnboundedReceiver<i64>>,
    runtime: Arc<SupervisionRuntime>,
}

impl std::fmt::Debug for AccountSupervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountSupervisor(..)")
    }
}

/// Why an account's actor could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum AccountSupervisorError {
    #[error("the account supervisor is not running")]
    Unavailable,
    #[error(transparent)]
    Call(#[from] CallError),
}

impl AccountSupervisor {
    /// The `sessions` supervisor's spec (to add under the root) and the
    /// handle to it. Call inside the runtime the actors run on.
    pub fn new(
        deps: impl FnOnce(mpsc::UnboundedSender<i64>) -> AccountDeps,
        events: EventLog,
        runtime: Arc<SupervisionRuntime>,
        restarts: &AccountRestartSettings,
    ) -> (ChildSpec, Self) {
        let (released_tx, released_rx) = mpsc::unbounded_channel();
        let deps = Arc::new(deps(released_tx));
        let (spec, _) = SupervisorSpec::new("sessions")
            .policy(account_policy(restarts))
            .intensity(Intensity::PerChild)
            .dynamic();
        let (child_spec, supervisor) = spec.into_child(runtime.clone());
        let accounts = Self {
            inner: Arc::new(Inner {
                supervisor,
                deps,
                events,
                actors: Mutex::default(),
                released: Handover::new(released_rx),
                runtime,
            }),
        };
        (child_spec, accounts)
    }

    /// The supervisor's two task children, to start right after it (see
    /// [`ChildSpec::task`]); each ends once the supervisor is dropped:
    /// - `account-releases`: actors that ended for good are removed from the
    ///   `sessions` supervisor, so a restart of it does not bring them back
    ///   (the queue of released accounts outlives a restart of the task);
    /// - `account-give-ups`: an account whose actor crashed too often (a
    ///   supervision `GaveUp` event) is marked `failed`, with its
    ///   `account.state` event, rather than left `connecting`.
    pub fn task_children(&self) -> [ChildSpec; 2] {
        let weak = Arc::downgrade(&self.inner);
        let released = self.inner.released.clone();
        let (releases, _) = ChildSpec::task("account-releases", move |_| {
            let (weak, released) = (weak.clone(), released.clone());
            async move {
                let mut queue = released.lease().ok_or("the release queue is held")?;
                while let Some(id) = queue.recv().await {
                    let Some(inner) = weak.upgrade() else {
                        break;
                    };
                    AccountSupervisor { inner }.detach(id).await;
                }
                Ok(())
            }
        });
        let weak = Arc::downgrade(&self.inner);
        let runtime = self.inner.runtime.clone();
        let (give_ups, _) = ChildSpec::task("account-give-ups", move |_| {
            let events = runtime.subscribe();
            mark_given_up(weak.clone(), events)
        });
        [
            releases.restart(Restart::Transient),
            give_ups.restart(Restart::Transient),
        ]
    }

    pub fn board(&self) -> &StateBoard {
        &self.inner.deps.board
    }

    fn actors(&self) -> std::sync::MutexGuard<'_, HashMap<i64, ChildRef<AccountActor>>> {
        self.inner
            .actors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the actors of every account that should run (boot). Sign-ins
    /// that were waiting for a code cannot survive a restart (the client
    /// that asked for the code is gone): they become `login_expired`.
    pub async fn start_all(&self) -> Result<usize, DbErr> {
        let db = &self.inner.deps.db;
        account::Entity::update_many()
            .col_expr(
                account::Column::State,
                Expr::value(AccountState::LoginExpired.as_str()),
            )
            .filter(account::Column::State.is_in([
                AccountState::AwaitingCode.as_str(),
                AccountState::AwaitingPassword.as_str(),
            ]))
            .exec(db)
            .await?;
        let accounts = account::Entity::find().all(db).await?;
        let mut started = 0;
        for a in accounts {
            let state = AccountState::parse(&a.state).unwrap_or(AccountState::Stopped);
            self.inner.deps.board.set(a.id, state);
            if state.starts_at_boot() && self.start(a.id).await.is_ok() {
                started += 1;
            }
        }
        tracing::info!(accounts = started, "account actors started");
        Ok(started)
    }

    /// Starts the account's actor (no-op when it runs already).
    pub async fn start(&self, account_id: i64) -> Result<(), AccountSupervisorError> {
        let deps = self.inner.deps.clone();
        // Its client slot comes from its owner's share.
        let owner = account::Entity::find_by_id(account_id)
            .one(&deps.db)
            .await
            .map_err(|_| AccountSupervisorError::Unavailable)?
            .ok_or(AccountSupervisorError::Unavailable)?
            .user_id;
        let writer = self.inner.events.writer(&account_topic(account_id));
        let (spec, child) = ChildSpec::new(child_name(account_id), move |cctx| {
            AccountActor::new(
                account_id,
                owner,
                deps.clone(),
                writer.clone(),
                cctx.exit.clone(),
            )
        });
        let spec = spec.restart(Restart::Transient);
        // Right after boot the supervisor may still be starting.
        let supervisor =
            tokio::time::timeout(Duration::from_secs(5), self.inner.supervisor.ready())
                .await
                .map_err(|_| AccountSupervisorError::Unavailable)?
                .map_err(|_| AccountSupervisorError::Unavailable)?;
        match supervisor.send(AddChild(spec)).await {
            Ok(Ok(())) => {
                self.actors().insert(account_id, child);
                Ok(())
            }
            Ok(Err(AddChildError::Exists)) => Ok(()),
            Ok(Err(AddChildError::NotDynamic)) | Err(_) => Err(AccountSupervisorError::Unavailable),
        }
    }

    /// Stops the account's actor and forgets it (account removed or stopped).
    async fn detach(&self, account_id: i64) -> bool {
        self.actors().remove(&account_id);
        match self.inner.supervisor.addr() {
            Some(s) => s
                .send(RemoveChild(child_name(account_id)))
                .await
                .unwrap_or(false),
            None => false,
        }
    }

    /// The account was removed: stop its actor, forget its state.
    pub async fn forget(&self, account_id: i64) {
        self.detach(account_id).await;
        self.inner.deps.board.remove(account_id);
        self.inner.events.forget(&account_topic(account_id));
    }

    fn actor(&self, account_id: i64) -> Result<ChildRef<AccountActor>, CallError> {
        self.actors().get(&account_id).cloned().ok_or_else(|| {
            CallError::NotConnected(
                self.inner
                    .deps
                    .board
                    .get(account_id)
                    .unwrap_or(AccountState::Stopped),
            )
        })
    }

    /// The state the account's actor last reported, if this node knows it.
    pub fn state(&self, account_id: i64) -> Option<AccountState> {
        self.inner.deps.board.get(account_id)
    }

    pub async fn history(
        &self,
        account_id: i64,
        chat: ChatRef,
        limit: u32,
        before: Option<i32>,
    ) -> Result<Vec<Message>, CallError> {
        let actor = self.actor(account_id)?;
        let not_running =
            || CallError::NotConnected(self.state(account_id).unwrap_or(AccountState::Connecting));
        actor
            .send(History {
                chat,
                limit,
                before,
            })
            .await
            .map_err(|_| not_running())?
    }

    /// Uploads one part of a file through the account's connection.
    pub async fn save_part(
        &self,
        account_id: i64,
        part: super::actor::SavePart,
    ) -> Result<(), CallError> {
        let actor = self.actor(account_id)?;
        let not_running =
            || CallError::NotConnected(self.state(account_id).unwrap_or(AccountState::Connecting));
        actor.send(part).await.map_err(|_| not_running())?
    }

    /// Rotates the account's session: through its actor when it runs (so no
    /// session write races the rotation), directly otherwise.
    pub async fn rotate(&self, account_id: i64) -> Result<i64, CallError> {
        if let Ok(actor) = self.actor(account_id)
            && let Ok(res) = actor.send(Rotate(RotationReason::Manual)).await
        {
            return res;
        }
        let id = super::actor::rotate_active(&self.inner.deps.store, account_id)
            .await
            .map_err(|e| match e {
                CallError::Telegram(TgError::Unauthorized) => {
                    CallError::NotConnected(AccountState::Unauthorized)
                }
                other => other,
            })?;
        self.inner
            .deps
            .metrics
            .rotations
            .with_label_values(&[RotationReason::Manual.as_str()])
            .inc();
        Ok(id)
    }
}

/// `account-give-ups`: marks `failed` each account whose actor the
/// `sessions` supervisor gave up on.
async fn mark_given_up(
    weak: std::sync::Weak<Inner>,
    mut supervision: broadcast::Receiver<SupervisionEvent>,
) -> crate::supervisor::TaskResult {
    loop {
        let event = match supervision.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return Ok(()),
        };
        let SupervisionEventKind::GaveUp { cause, .. } = &event.kind else {
            continue;
        };
        let Some(id) = event
            .actor
            .rsplit_once("/account-")
            .and_then(|(_, id)| id.parse::<i64>().ok())
        else {
            continue;
        };
        let Some(inner) = weak.upgrade() else {
            return Ok(());
        };
        let previous = inner.deps.board.set(id, AccountState::Failed);
        let writer = inner.events.writer(&account_topic(id));
        let data = super::state::state_event(
            id,
            AccountState::Failed,
            previous,
            serde_json::json!({ "reason": "crashed too often", "detail": cause }),
        );
        if writer
            .publish_state(id, AccountState::Failed.as_str(), data)
            .await
            .is_err()
        {
            tracing::warn!(account_id = id, "state event dropped: writer stopped");
        }
    }
}
