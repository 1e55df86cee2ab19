//! The flood log: FLOOD_WAITs each account met in the last hour, for
//! `GET /accounts/{id}/limits` and `/health/rate-limits`.

use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// How long a flood wait stays in its account's flood log.
const RETENTION: Duration = Duration::from_secs(3600);
/// Records kept per account (Telegram cannot send more in an hour than an
/// account makes calls; this only bounds a pathological loop).
const CAP: usize = 1000;

/// A FLOOD_WAIT an account met.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FloodRecord {
    pub at: chrono::DateTime<chrono::Utc>,
    /// Seconds Telegram asked to wait.
    pub seconds: u32,
    /// The Telegram method that was refused.
    pub method: String,
    /// `account`, or `chat:<id>` for a wait on one chat.
    pub scope: String,
}

/// Per account: each record with the instant it was met (for the cut-off).
#[derive(Default)]
pub(super) struct FloodLog(Mutex<HashMap<i64, VecDeque<(Instant, FloodRecord)>>>);

impl FloodLog {
    fn lock(&self) -> MutexGuard<'_, HashMap<i64, VecDeque<(Instant, FloodRecord)>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn record(&self, account: i64, record: FloodRecord, now: Instant) {
        let mut floods = self.lock();
        let log = floods.entry(account).or_default();
        prune(log, now);
        log.push_back((now, record));
        while log.len() > CAP {
            log.pop_front();
        }
    }

    /// The account's records of the last hour, oldest first.
    pub fn of(&self, account: i64, now: Instant) -> Vec<FloodRecord> {
        let mut floods = self.lock();
        let Some(log) = floods.get_mut(&account) else {
            return Vec::new();
        };
        prune(log, now);
        log.iter().map(|(_, r)| r.clone()).collect()
    }

    /// Records of the last hour, all accounts together.
    pub fn count(&self, now: Instant) -> usize {
        self.lock()
            .values()
            .map(|log| log.iter().filter(|(at, _)| fresh(*at, now)).count())
            .sum()
    }

    pub fn forget(&self, account: i64) {
        self.lock().remove(&account);
    }

    /// Drops records older than an hour, and accounts left with none.
    pub fn sweep(&self, now: Instant) {
        self.lock().retain(|_, log| {
            prune(log, now);
            !log.is_empty()
        });
    }
}

fn fresh(at: Instant, now: Instant) -> bool {
    at + RETENTION > now
}

fn prune(log: &mut VecDeque<(Instant, FloodRecord)>, now: Instant) {
    while log.front().is_some_and(|(at, _)| !fresh(*at, now)) {
        log.pop_front();
    }
}
