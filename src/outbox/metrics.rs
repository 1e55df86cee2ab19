//! The outbox's metric families: acceptance, backlog, messages that left
//! the outbox (and whose fault a failed one was), retries.

use super::backlog::Backlog;
use crate::domain::Fault;
use crate::domain::MessageStatus;
use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Why an attempt is tried again (the `reason` label of
/// `tgvisor_outbox_retries_total`): a FLOOD_WAIT, or the code of a transient
/// error ([`crate::telegram::TgError::is_transient`]).
const RETRY_REASONS: [&str; 4] = ["flood_wait", "network", "timeout", "other"];

/// The failures a message can end with, and whose fault each is (the
/// labels of `tgvisor_outbox_failures_total`, exported from the start so
/// the first failure counts in increase()): a chat the drain cannot read
/// or resolve, a request Telegram refuses, an upload that is gone (the
/// sender's); transient errors past `outbox.max_attempts` (tgvisor's).
/// `other` is either: Telegram's 4xx or its 5xx.
const FAILURE_REASONS: [(&str, Fault); 8] = [
    ("invalid_chat", Fault::Client),
    ("peer_invalid", Fault::Client),
    ("bad_request", Fault::Client),
    ("upload_missing", Fault::Client),
    ("other", Fault::Client),
    ("other", Fault::Server),
    ("network", Fault::Server),
    ("timeout", Fault::Server),
];

/// The outbox's metric families.
#[derive(Clone)]
pub struct OutboxMetrics {
    /// Messages accepted (new rows).
    pub accepted: IntCounter,
    /// Requests answered from an earlier one with the same idempotency key.
    pub replayed: IntCounter,
    /// Rows per group-commit transaction.
    pub batch_rows: Histogram,
    /// Messages not delivered yet (queued or sending).
    pub depth: IntGauge,
    /// Seconds since the oldest message not delivered yet was accepted (0
    /// when there is none); set with `depth` at each recount.
    pub oldest_age: Gauge,
    /// Messages that left the outbox, by final status (sent, failed).
    pub finished: IntCounterVec,
    /// Failed messages by reason (the error code) and fault: `client` (a
    /// chat that does not exist, a bad request: the sender's) or `server`
    /// (the network, timeouts, Telegram's 5xx: tgvisor's to answer for).
    pub failures: IntCounterVec,
    /// Acceptance to Telegram's answer, for sent messages.
    pub delivery: Histogram,
    /// Attempts that will be tried again, by reason (flood_wait, network, …).
    pub retries: IntCounterVec,
}

impl OutboxMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            accepted: IntCounter::new(
                "tgvisor_outbox_accepted_total",
                "Messages accepted into the outbox.",
            )?,
            replayed: IntCounter::new(
                "tgvisor_outbox_idempotent_replays_total",
                "Send requests answered with an earlier message of the same idempotency key.",
            )?,
            batch_rows: Histogram::with_opts(
                HistogramOpts::new(
                    "tgvisor_outbox_batch_rows",
                    "Messages inserted per group-commit transaction.",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            )?,
            depth: IntGauge::new(
                "tgvisor_outbox_depth",
                "Messages accepted and not yet delivered (queued or sending).",
            )?,
            oldest_age: Gauge::new(
                "tgvisor_outbox_oldest_age_seconds",
                "Age of the oldest message not yet delivered (0 when none), as of the last recount.",
            )?,
            finished: IntCounterVec::new(
                Opts::new(
                    "tgvisor_outbox_messages_total",
                    "Messages that left the outbox, by final status.",
                ),
                &["status"],
            )?,
            failures: IntCounterVec::new(
                Opts::new(
                    "tgvisor_outbox_failures_total",
                    "Messages that failed, by reason (error code) and fault (client: the request's own, e.g. a bad chat; server: the network, timeouts, Telegram's 5xx).",
                ),
                &["reason", "fault"],
            )?,
            delivery: Histogram::with_opts(
                HistogramOpts::new(
                    "tgvisor_outbox_delivery_seconds",
                    "Time from acceptance to Telegram's answer, for sent messages.",
                )
                .buckets(vec![
                    0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
                ]),
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "tgvisor_outbox_retries_total",
                    "Send attempts that will be tried again, by reason.",
                ),
                &["reason"],
            )?,
        };
        registry.register(Box::new(m.accepted.clone()))?;
        registry.register(Box::new(m.replayed.clone()))?;
        registry.register(Box::new(m.batch_rows.clone()))?;
        registry.register(Box::new(m.depth.clone()))?;
        registry.register(Box::new(m.oldest_age.clone()))?;
        registry.register(Box::new(m.finished.clone()))?;
        registry.register(Box::new(m.failures.clone()))?;
        registry.register(Box::new(m.delivery.clone()))?;
        registry.register(Box::new(m.retries.clone()))?;
        // The bounded label sets start at zero: a failure ratio has a
        // denominator from the start, a first failure or retry counts in
        // increase(), and dashboards see the series before the first event.
        for status in [MessageStatus::Sent, MessageStatus::Failed] {
            m.finished.with_label_values(&[status.as_str()]);
        }
        for reason in RETRY_REASONS {
            m.retries.with_label_values(&[reason]);
        }
        for (reason, fault) in FAILURE_REASONS {
            m.failures.with_label_values(&[reason, fault.as_str()]);
        }
        Ok(m)
    }

    /// Shows `backlog`, read at `now`, in `depth` and `oldest_age`.
    pub fn show_backlog(&self, backlog: &Backlog, now: chrono::DateTime<chrono::Utc>) {
        self.depth
            .set(i64::try_from(backlog.depth).unwrap_or(i64::MAX));
        let age = backlog.oldest.map_or(0.0, |oldest| {
            (now - oldest).to_std().unwrap_or_default().as_secs_f64()
        });
        self.oldest_age.set(age);
    }
}

impl OutboxMetrics {
    /// Counts a message that failed with `reason`, `fault`'s doing.
    pub fn failed(&self, reason: &str, fault: Fault) {
        self.finished
            .with_label_values(&[MessageStatus::Failed.as_str()])
            .inc();
        self.failures
            .with_label_values(&[reason, fault.as_str()])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_gauges_show_depth_and_the_oldest_age() {
        let metrics = OutboxMetrics::new(&prometheus::Registry::new()).unwrap();
        let now = chrono::Utc::now();
        metrics.show_backlog(
            &Backlog {
                depth: 3,
                oldest: Some(now - chrono::Duration::milliseconds(90_500)),
            },
            now,
        );
        assert_eq!(metrics.depth.get(), 3);
        assert!((metrics.oldest_age.get() - 90.5).abs() < 1e-9);
        // Nothing waiting: both back to zero.
        metrics.show_backlog(&Backlog::default(), now);
        assert_eq!(metrics.depth.get(), 0);
        assert_eq!(metrics.oldest_age.get(), 0.0);
        // A clock that went backwards shows no age, not a negative one.
        metrics.show_backlog(
            &Backlog {
                depth: 1,
                oldest: Some(now + chrono::Duration::seconds(5)),
            },
            now,
        );
        assert_eq!(metrics.oldest_age.get(), 0.0);
    }
}
