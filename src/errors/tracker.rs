//! The [`ErrorTracker`]: groups, samples, the count of recent sightings,
//! and the task that tracks failing actors ([`ErrorTracker::watch`]).

use super::shape::{cut, shape};
use crate::supervisor::{
    ChildSpec, SupervisionEvent, SupervisionEventKind, SupervisionRuntime, TaskResult,
};
use prometheus::{IntCounterVec, Opts, Registry};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::Instant;

/// Groups kept at most; past it, the group seen longest ago goes.
const MAX_GROUPS: usize = 500;
/// Samples kept per group.
const MAX_SAMPLES: usize = 5;
/// Sightings remembered for "how many in the last period" (the `errors`
/// alert rule, `alerting.rules.errors`), at most.
const MAX_RECENT: usize = 10_000;

/// One sighting kept as an example.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorSample {
    pub at: chrono::DateTime<chrono::Utc>,
    /// The message, secrets scrubbed.
    pub message: String,
    /// The incident id the answer and the log line carry, when there is one.
    pub incident_id: Option<String>,
    /// Where it happened (a route pattern, an actor path).
    pub context: Option<String>,
}

/// A group of errors of one kind and shape.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorGroup {
    pub kind: String,
    pub shape: String,
    pub count: u64,
    pub first_seen: chrono::DateTime<chrono::Utc>,
    pub last_seen: chrono::DateTime<chrono::Utc>,
    pub samples: Vec<ErrorSample>,
}

struct State {
    groups: HashMap<(String, String), ErrorGroup>,
    recent: VecDeque<Instant>,
}

/// The tracker; cheap to clone.
#[derive(Clone)]
pub struct ErrorTracker {
    state: Arc<Mutex<State>>,
    counted: IntCounterVec,
}

impl ErrorTracker {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counted = IntCounterVec::new(
            Opts::new(
                "tgvisor_errors_total",
                "Errors tracked (5xx answers by code, actor errors and panics), by kind.",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(counted.clone()))?;
        for kind in ["internal", "actor_error", "actor_panic"] {
            counted.with_label_values(&[kind]);
        }
        Ok(Self {
            state: Arc::new(Mutex::new(State {
                groups: HashMap::new(),
                recent: VecDeque::new(),
            })),
            counted,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one error.
    pub fn track(
        &self,
        kind: &str,
        message: &str,
        incident_id: Option<&str>,
        context: Option<&str>,
    ) {
        let now = chrono::Utc::now();
        let message = crate::telemetry::redact::scrub(cut(message)).into_owned();
        let key = (kind.to_owned(), shape(&message));
        self.counted.with_label_values(&[kind]).inc();
        let mut state = self.lock();
        if state.recent.len() >= MAX_RECENT {
            state.recent.pop_front();
        }
        state.recent.push_back(Instant::now());
        if !state.groups.contains_key(&key) && state.groups.len() >= MAX_GROUPS {
            let stalest = state
                .groups
                .iter()
                .min_by_key(|(_, g)| g.last_seen)
                .map(|(k, _)| k.clone());
            if let Some(k) = stalest {
                state.groups.remove(&k);
            }
        }
        let group = state
            .groups
            .entry(key.clone())
            .or_insert_with(|| ErrorGroup {
                kind: key.0,
                shape: key.1,
                count: 0,
                first_seen: now,
                last_seen: now,
                samples: Vec::new(),
            });
        group.count += 1;
        group.last_seen = now;
        if group.samples.len() < MAX_SAMPLES {
            group.samples.push(ErrorSample {
                at: now,
                message,
                incident_id: incident_id.map(str::to_owned),
                context: context.map(str::to_owned),
            });
        }
    }

    /// Every group, the most recently seen first.
    pub fn groups(&self) -> Vec<ErrorGroup> {
        let mut all: Vec<ErrorGroup> = self.lock().groups.values().cloned().collect();
        all.sort_by_key(|g| std::cmp::Reverse(g.last_seen));
        all
    }

    /// Errors tracked in the last `period`.
    pub fn count_since(&self, period: Duration) -> usize {
        let state = self.lock();
        state
            .recent
            .iter()
            .rev()
            .take_while(|t| t.elapsed() <= period)
            .count()
    }

    /// The `error-tracker` task child: tracks actors that exit with an
    /// error or a panic. It subscribes when it starts, so it goes first
    /// among the root's children; after a restart of its own it tracks
    /// from then on (its own exit shows in the supervision metrics).
    pub fn task_child(&self, supervision: Arc<SupervisionRuntime>) -> ChildSpec {
        let tracker = self.clone();
        ChildSpec::task("error-tracker", move |_| {
            track_exits(tracker.clone(), supervision.subscribe())
        })
        .0
    }
}

async fn track_exits(
    tracker: ErrorTracker,
    mut events: broadcast::Receiver<SupervisionEvent>,
) -> TaskResult {
    loop {
        match events.recv().await {
            Ok(e) => {
                if let SupervisionEventKind::Exited {
                    reason,
                    abnormal: true,
                } = &e.kind
                {
                    let kind = if reason.starts_with("panic") {
                        "actor_panic"
                    } else {
                        "actor_error"
                    };
                    tracker.track(kind, reason, None, Some(&e.actor));
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "error tracker: supervision events missed");
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_one_shape_group_and_keep_five_scrubbed_samples() {
        let t = ErrorTracker::new(&Registry::new()).unwrap();
        for i in 0..7 {
            t.track(
                "internal",
                &format!(
                    "row {i} of upload 0x{:x} failed for +44 20 7946 0{i}58",
                    4096 + i
                ),
                Some(&format!("incident-{i}")),
                Some("/api/v1/uploads/{id}"),
            );
        }
        t.track("internal", "the pool timed out after 30 s", None, None);
        let groups = t.groups();
        assert_eq!(groups.len(), 2);
        let big = groups.iter().find(|g| g.count == 7).unwrap();
        assert_eq!(big.shape, "row N of upload N failed for +[REDACTED]");
        assert_eq!(big.samples.len(), 5);
        assert_eq!(big.samples[0].incident_id.as_deref(), Some("incident-0"));
        assert!(big.samples.iter().all(|s| !s.message.contains("7946")));
        assert_eq!(t.count_since(Duration::from_secs(60)), 8);
    }

    #[test]
    fn groups_are_bounded() {
        let t = ErrorTracker::new(&Registry::new()).unwrap();
        for i in 0..(MAX_GROUPS + 10) {
            t.track(&format!("kind{i}"), "x", None, None);
        }
        assert_eq!(t.groups().len(), MAX_GROUPS);
    }
}
