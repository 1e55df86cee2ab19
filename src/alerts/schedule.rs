//! When an alert is notified, where, and what comes next: the alerting
//! matrix of the configuration (`alerting`) as a function of time, with no
//! clock and no I/O.
//!
//! An alert starts in tier 0, the channels of its severity. It is notified
//! once, then repeated every `retry_interval_ms` up to `max_retries` times.
//! After that, a severity with `escalation` moves it to the next tier of
//! `escalation_tiers` (one more interval later) and starts over there; a
//! severity without escalation, or the last tier, stops repeating. An
//! acknowledgement stops all of it (the router stops asking).

use crate::config::Alerting;
use chrono::{DateTime, Duration, Utc};

/// An alert's place in its schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub tier: u32,
    /// Notifications sent in this tier.
    pub notifications: u32,
}

/// What to send now and when to come back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Where it stands after this step.
    pub position: Position,
    /// The channels to notify now.
    pub channels: Vec<String>,
    /// This step moved the alert to a new tier.
    pub escalated: bool,
    /// When the next step is due; `None`: nothing more.
    pub next: Option<DateTime<Utc>>,
}

/// The channels of `tier` for `severity`.
pub fn channels<'a>(config: &'a Alerting, severity: &str, tier: u32) -> &'a [String] {
    match tier {
        0 => &config.policy(severity).channels,
        t => config
            .escalation_tiers
            .get(t as usize - 1)
            .map_or(&[], Vec::as_slice),
    }
}

/// The step due at `now` for an alert at `at`.
pub fn step(config: &Alerting, severity: &str, at: Position, now: DateTime<Utc>) -> Step {
    let policy = config.policy(severity);
    let interval = Duration::from_std(policy.retry_interval_ms).unwrap_or(Duration::MAX);
    let tiers = config.escalation_tiers.len() as u32;
    let mut position = at;
    let mut escalated = false;
    if position.notifications > policy.max_retries {
        // This tier is spent: the next one, or nothing.
        if !policy.escalation || position.tier >= tiers {
            return Step {
                position,
                channels: Vec::new(),
                escalated: false,
                next: None,
            };
        }
        position = Position {
            tier: position.tier + 1,
            notifications: 0,
        };
        escalated = true;
    }
    position.notifications += 1;
    let more_here = position.notifications <= policy.max_retries;
    let next_tier = policy.escalation && position.tier < tiers;
    Step {
        position,
        channels: channels(config, severity, position.tier).to_vec(),
        escalated,
        next: (more_here || next_tier).then(|| now + interval),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Environment, Settings};

    fn config() -> Alerting {
        Settings::from_defaults(Environment::Test, figment::Figment::new())
            .expect("defaults")
            .alerting
    }

    /// Runs the schedule from t = 0 until it stops: (minute, channels,
    /// escalated) for each step.
    fn timeline(severity: &str) -> Vec<(i64, Vec<String>, bool)> {
        let c = config();
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut at = Position {
            tier: 0,
            notifications: 0,
        };
        let mut now = t0;
        let mut out = Vec::new();
        loop {
            let s = step(&c, severity, at, now);
            if s.channels.is_empty() && s.next.is_none() {
                break;
            }
            out.push(((now - t0).num_minutes(), s.channels.clone(), s.escalated));
            at = s.position;
            match s.next {
                Some(n) => now = n,
                None => break,
            }
            assert!(out.len() < 50, "the schedule never ends");
        }
        out
    }

    fn ch(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn high_repeats_every_five_minutes_three_times_then_escalates_to_the_next_tier() {
        let sc = ch(&["slack", "email"]);
        let pager = ch(&["webhook"]);
        assert_eq!(
            timeline("high"),
            [
                (0, sc.clone(), false),
                (5, sc.clone(), false),
                (10, sc.clone(), false),
                (15, sc, false),
                (20, pager.clone(), true),
                (25, pager.clone(), false),
                (30, pager.clone(), false),
                (35, pager, false),
            ]
        );
    }

    #[test]
    fn medium_and_low_repeat_their_retries_and_never_escalate() {
        let slack = ch(&["slack"]);
        assert_eq!(
            timeline("medium"),
            [
                (0, slack.clone(), false),
                (15, slack.clone(), false),
                (30, slack, false)
            ]
        );
        let logs = ch(&["logs"]);
        assert_eq!(
            timeline("low"),
            [(0, logs.clone(), false), (60, logs, false)]
        );
    }
}
