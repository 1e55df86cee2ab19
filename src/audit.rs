//! The audit trail: logins, failed logins, token revocation, account add and
//! remove, session rotation and key rotation, each with actor, time, outcome
//! and client IP. Entries carry identifiers and codes only, never secrets:
//! [`AuditEntry::detail`] is built from typed fields by the callers here, not
//! from request bodies.

use crate::entities::audit_log;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use std::net::IpAddr;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    UserRegister,
    Login,
    LogoutAll,
    RoleChange,
    AccountAdd,
    AccountRemove,
    SessionRotate,
    KeyRotate,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRegister => "user.register",
            Self::Login => "auth.login",
            Self::LogoutAll => "auth.logout_all",
            Self::RoleChange => "user.role",
            Self::AccountAdd => "account.add",
            Self::AccountRemove => "account.remove",
            Self::SessionRotate => "session.rotate",
            Self::KeyRotate => "keys.rotate",
        }
    }
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Refused on the merits (wrong password, bad input).
    Failure,
    /// Refused by policy (rate limit, missing permission).
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }
}

/// Who did it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    User(i64),
    Anonymous,
    Cli,
    System,
}

impl Actor {
    fn label(self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Anonymous => "anonymous".to_owned(),
            Self::Cli => "cli".to_owned(),
            Self::System => "system".to_owned(),
        }
    }
}

/// One audit record, before it is written.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    pub actor: Actor,
    pub action: Action,
    pub outcome: Outcome,
    /// What it was done to: `user:<id>`, `account:<id>`, `session:<id>`.
    pub target: Option<String>,
    pub ip: Option<IpAddr>,
    /// Codes and counts only.
    pub detail: Option<serde_json::Value>,
}

impl AuditEntry {
    pub fn new(actor: Actor, action: Action, outcome: Outcome) -> Self {
        Self {
            actor,
            action,
            outcome,
            target: None,
            ip: None,
            detail: None,
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Writes `entry` through `conn` (a transaction, to commit it together with
/// the change it describes, or the pool).
pub async fn record<C: ConnectionTrait>(conn: &C, entry: AuditEntry) -> Result<(), DbErr> {
    let actor_user_id = match entry.actor {
        Actor::User(id) => Some(id),
        _ => None,
    };
    audit_log::ActiveModel {
        created_at: Set(chrono::Utc::now().fixed_offset()),
        actor_user_id: Set(actor_user_id),
        actor: Set(entry.actor.label()),
        action: Set(entry.action.as_str().to_owned()),
        target: Set(entry.target),
        outcome: Set(entry.outcome.as_str().to_owned()),
        ip: Set(entry.ip.map(|ip| ip.to_string())),
        detail: Set(entry.detail),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Like [`record`], for paths where failing to audit must not fail the
/// request (failed logins): the failure is logged instead.
pub async fn record_or_log<C: ConnectionTrait>(conn: &C, entry: AuditEntry) {
    let action = entry.action.as_str();
    if let Err(e) = record(conn, entry).await {
        tracing::error!(action, error = %e, "writing the audit log failed");
    }
}

/// The most recent entries, newest first, optionally before an id.
pub async fn recent<C: ConnectionTrait>(
    conn: &C,
    limit: u64,
    before_id: Option<i64>,
) -> Result<Vec<audit_log::Model>, DbErr> {
    let mut q = audit_log::Entity::find().order_by_desc(audit_log::Column::Id);
    if let Some(before) = before_id {
        q = q.filter(audit_log::Column::Id.lt(before));
    }
    q.limit(limit).all(conn).await
}
