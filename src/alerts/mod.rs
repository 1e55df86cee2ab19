//! The AlertRouter: alerts raised by the HealthMonitor (and anything else
//! that notices trouble) go to channels by the alerting matrix of the
//! configuration (`alerting`: channels per severity, repeats, escalation).
//!
//! - An alert has a fingerprint. Raising what already fires changes
//!   nothing (one notification for a burst of samples, not one per
//!   sample), unless its severity rose: then it is notified again at the
//!   new severity.
//! - A new alert waits `alerting.group_wait_ms` before its first
//!   notification; every alert due at once goes out as one notification
//!   per channel.
//! - Repeats, escalation and their timing: [`schedule`].
//! - `POST /api/v1/alerts/{id}/ack` stops an alert's repeats and
//!   escalation; its resolution is still sent.
//! - Resolving sends a resolution to every channel the alert reached.
//! - Every change is written to the `alerts` table before anything is
//!   sent, so a restart neither pages again for what was sent nor forgets
//!   what fires. When the database does not answer, the router pages from
//!   memory all the same and writes once it answers again: an outage of
//!   the database is exactly when a page must go out.
//!
//! Raises, resolutions and acknowledgements queue in a [`AlertRouterHandle`]
//! that outlives the router actor's restarts; the actor applies them one at
//! a time, in order.

pub mod channels;
mod router;
pub mod schedule;

pub use router::AlertRouter;

use crate::entities::alert;
use prometheus::{IntGaugeVec, Opts, Registry};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Notify, oneshot};

/// How urgent an alert is; the alerting matrix has a row for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "high" => Self::High,
            "medium" => Self::Medium,
            _ => Self::Low,
        }
    }
}

/// An alert being raised.
#[derive(Clone, Debug)]
pub struct NewAlert {
    /// What makes two raises the same alert.
    pub fingerprint: String,
    pub name: String,
    pub severity: Severity,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
}

/// An alert as the API and the channels show it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    pub id: i64,
    pub fingerprint: String,
    pub name: String,
    /// `high`, `medium` or `low`.
    pub severity: String,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    /// `firing`, `acknowledged` or `resolved`.
    pub status: String,
    /// The escalation tier reached (0: the severity's own channels).
    pub tier: i32,
    /// Notifications sent in that tier.
    pub notifications: i32,
    pub started_at: chrono::DateTime<chrono::FixedOffset>,
    pub updated_at: chrono::DateTime<chrono::FixedOffset>,
    pub last_notified_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    pub next_notify_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    pub acked_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    pub acked_by: Option<i64>,
    pub resolved_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

impl From<alert::Model> for AlertView {
    fn from(m: alert::Model) -> Self {
        Self {
            id: m.id,
            labels: serde_json::from_str(&m.labels).unwrap_or_default(),
            fingerprint: m.fingerprint,
            name: m.name,
            severity: m.severity,
            summary: m.summary,
            status: m.status,
            tier: m.tier,
            notifications: m.notifications,
            started_at: m.started_at,
            updated_at: m.updated_at,
            last_notified_at: m.last_notified_at,
            next_notify_at: m.next_notify_at,
            acked_at: m.acked_at,
            acked_by: m.acked_by,
            resolved_at: m.resolved_at,
        }
    }
}

/// Why an acknowledgement was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("no such alert")]
    NotFound,
    #[error("the alert is resolved: there is nothing to acknowledge")]
    Resolved,
    #[error("the alert router is restarting; try again shortly")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<sea_orm::DbErr> for AlertError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(e.into())
    }
}

/// `tgvisor_alerts_firing{severity}` (acknowledged ones included: they
/// still fire).
#[derive(Clone)]
pub struct AlertMetrics {
    pub firing: IntGaugeVec,
    pub channels: channels::ChannelMetrics,
}

impl AlertMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let firing = IntGaugeVec::new(
            Opts::new(
                "tgvisor_alerts_firing",
                "Alerts firing now (acknowledged or not), by severity.",
            ),
            &["severity"],
        )?;
        registry.register(Box::new(firing.clone()))?;
        for s in [Severity::High, Severity::Medium, Severity::Low] {
            firing.with_label_values(&[s.as_str()]).set(0);
        }
        Ok(Self {
            firing,
            channels: channels::ChannelMetrics::new(registry)?,
        })
    }
}

/// What the router is asked to do.
#[derive(Debug)]
enum Op {
    Raise(NewAlert),
    Resolve(String),
    Ack {
        id: i64,
        by: i64,
        reply: oneshot::Sender<Result<AlertView, AlertError>>,
    },
}

/// The way in to the router: cheap to clone, and its queue outlives the
/// router actor's restarts.
#[derive(Clone)]
pub struct AlertRouterHandle {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<VecDeque<Op>>,
    wake: Notify,
    db: sea_orm::DatabaseConnection,
}

impl AlertRouterHandle {
    pub fn new(db: sea_orm::DatabaseConnection) -> Self {
        Self {
            shared: Arc::new(Shared {
                queue: Mutex::default(),
                wake: Notify::new(),
                db,
            }),
        }
    }

    fn push(&self, op: Op) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(op);
        // A permit is kept when nobody waits: no wake-up is lost.
        self.shared.wake.notify_one();
    }

    fn pop(&self) -> Option<Op> {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    /// Raises `alert` (nothing new if it already fires at this severity).
    pub fn raise(&self, alert: NewAlert) {
        self.push(Op::Raise(alert));
    }

    /// Resolves the alert with `fingerprint`, if one fires.
    pub fn resolve(&self, fingerprint: &str) {
        self.push(Op::Resolve(fingerprint.to_owned()));
    }

    /// Acknowledges alert `id` for user `by`: no more repeats nor
    /// escalation.
    pub async fn ack(&self, id: i64, by: i64) -> Result<AlertView, AlertError> {
        let (reply, answer) = oneshot::channel();
        self.push(Op::Ack { id, by, reply });
        match tokio::time::timeout(std::time::Duration::from_secs(5), answer).await {
            Ok(Ok(result)) => result,
            _ => Err(AlertError::Unavailable),
        }
    }

    /// Alerts, newest first, optionally of one status.
    pub async fn list(
        &self,
        status: Option<&str>,
        limit: u64,
    ) -> Result<Vec<AlertView>, AlertError> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
        let mut q = alert::Entity::find().order_by_desc(alert::Column::Id);
        if let Some(s) = status {
            q = q.filter(alert::Column::Status.eq(s));
        }
        Ok(q.limit(limit)
            .all(&self.shared.db)
            .await?
            .into_iter()
            .map(AlertView::from)
            .collect())
    }
}
