//! [`Settings::validate`]: the checks that types alone cannot express.

use super::environment::{ConfigError, Environment};
use super::limits;
use super::sections::{Settings, TelegramBackend};
use std::time::Duration;

impl Settings {
    /// Checks that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let max_upload = 4000 * crate::domain::PART_SIZE as u64;
        if self.rate_limits.telegram.media_uploads.max_size == 0
            || self.rate_limits.telegram.media_uploads.max_size > max_upload
        {
            problems.push(format!(
                "rate_limits.telegram.media_uploads.max_size must be 1 to {max_upload} bytes (Telegram's 4000 parts of 512 KiB)"
            ));
        }
        let a = &self.alerting;
        for name in [&a.high.channels, &a.medium.channels, &a.low.channels]
            .into_iter()
            .chain(a.escalation_tiers.iter())
            .flatten()
        {
            if !limits::CHANNELS.contains(&name.as_str()) {
                problems.push(format!(
                    "alerting: unknown channel {name:?} (channels: {})",
                    limits::CHANNELS.join(", ")
                ));
            }
        }
        for (name, action) in [
            ("connections", &a.rules.connections.action),
            ("errors", &a.rules.errors.action),
            ("performance", &a.rules.performance.action),
        ] {
            if !matches!(action.as_str(), "notify" | "escalate" | "warn") {
                problems.push(format!(
                    "alerting.rules.{name}.action must be notify (medium), escalate (high) or warn (low)"
                ));
            }
        }
        if a.delivery_attempts == 0 {
            problems.push("alerting.delivery_attempts must be > 0".to_owned());
        }
        const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
        const HOUR: Duration = Duration::from_secs(3600);
        for p in [&a.high, &a.medium, &a.low] {
            if !(Duration::from_secs(1)..=WEEK).contains(&p.retry_interval_ms) {
                problems
                    .push("alerting.*.retry_interval_ms must be from 1000 to a week".to_owned());
                break;
            }
        }
        if !(Duration::from_millis(100)..=Duration::from_millis(240_000))
            .contains(&a.channels.alertmanager.refresh_ms)
        {
            problems.push(
                "alerting.channels.alertmanager.refresh_ms must be from 100 to 240000 (each post is valid for 5 minutes)"
                    .to_owned(),
            );
        }
        if a.group_wait_ms > HOUR || a.delivery_timeout_ms > HOUR {
            problems.push(
                "alerting.group_wait_ms and delivery_timeout_ms must be at most an hour".to_owned(),
            );
        }
        for (name, rule) in [
            ("connections", &a.rules.connections),
            ("errors", &a.rules.errors),
        ] {
            if rule.period_ms > WEEK {
                problems.push(format!(
                    "alerting.rules.{name}.period_ms must be at most a week"
                ));
            }
        }
        if a.rules.performance.period_ms > WEEK {
            problems.push("alerting.rules.performance.period_ms must be at most a week".to_owned());
        }
        let h = &self.health;
        if h.sample_interval_ms < Duration::from_millis(100)
            || h.window_ms < h.sample_interval_ms
            || h.check_timeout_ms.is_zero()
            || h.min_volume == 0
        {
            problems.push(
                "health: sample_interval_ms >= 100, window_ms >= sample_interval_ms, check_timeout_ms > 0, min_volume > 0".to_owned(),
            );
        }
        if self.uploads.sweep_interval_ms < Duration::from_secs(1) {
            problems.push("uploads.sweep_interval_ms must be at least 1000".to_owned());
        }
        if self.uploads.parallel_parts == 0 || self.uploads.part_attempts == 0 {
            problems
                .push("uploads.parallel_parts and uploads.part_attempts must be > 0".to_owned());
        }
        let b = &self.supervision.backoff;
        if !(0.0..=1.0).contains(&b.jitter) {
            problems.push("supervision.backoff.jitter must be between 0 and 1".to_owned());
        }
        if b.factor < 1.0 || !b.factor.is_finite() {
            problems.push("supervision.backoff.factor must be at least 1".to_owned());
        }
        if self.database.max_connections == 0
            || self.database.min_connections > self.database.max_connections
        {
            problems.push(
                "database.max_connections must be > 0 and >= database.min_connections".to_owned(),
            );
        }
        if self.environment == Environment::Production {
            for key in self.secrets.missing() {
                problems.push(format!("{key} is required in production"));
            }
            if self.database.url.is_none() {
                problems.push("database.url is required in production".to_owned());
            }
            if self.debug.fault_injection {
                problems.push("debug.fault_injection must be off in production".to_owned());
            }
        }
        if self.telegram.backend == TelegramBackend::Grammers
            && (self.telegram.api_id == 0 || self.telegram.api_hash.is_none())
        {
            problems.push(
                "telegram.api_id and telegram.api_hash are required with the grammers backend"
                    .to_owned(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems.join("; ")))
        }
    }
}
