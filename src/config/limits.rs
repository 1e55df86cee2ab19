//! The service's limits, monitoring thresholds and alerting matrix as
//! typed configuration (`rate_limits`, `thresholds`, `alerting`).
//!
//! Keys are snake_case and grouped by what they limit or watch
//! (`rate_limits.telegram`, `thresholds.websocket`, ...). Defaults live
//! only in `config/default.toml`.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A window and how much fits in it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(with = "super::millis")]
    pub window_ms: Duration,
    pub max: u32,
}

/// Every rate limit (`rate_limits`): Telegram's, the API's, the WebSocket
/// gateway's, and the margin added to flood waits.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    pub telegram: TelegramLimits,
    pub api: ApiLimits,
    pub websocket: WebSocketLimits,
    pub flood_wait: FloodWaitSettings,
}

/// How Telegram's FLOOD_WAIT answers are honoured.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FloodWaitSettings {
    /// Added to the seconds Telegram asked for: a block lasts wait + margin,
    /// so the retry does not land on the edge of Telegram's own window.
    #[serde(with = "super::millis")]
    pub margin_ms: Duration,
    /// Waits up to this long are waited out inside the outbox without
    /// changing the account's state; longer ones make it `flood_limited`.
    #[serde(with = "super::millis")]
    pub short_threshold_ms: Duration,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramLimits {
    pub messages_sent: MessagesSent,
    pub media_uploads: MediaUploads,
    pub channel_invites: Window,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesSent {
    #[serde(with = "super::millis")]
    pub window_ms: Duration,
    /// Messages per window per account.
    pub max: u32,
    /// Messages per window per chat.
    pub per_chat: u32,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MediaUploads {
    #[serde(with = "super::millis")]
    pub window_ms: Duration,
    pub max: u32,
    /// Bytes.
    pub max_size: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiLimits {
    pub standard: Window,
    pub auth: Window,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketLimits {
    pub connections: WsConnections,
    pub messages: WsMessages,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WsConnections {
    pub per_user: u32,
    pub total: u32,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WsMessages {
    #[serde(with = "super::millis")]
    pub window_ms: Duration,
    pub max: u32,
    /// Bytes per client frame.
    pub max_size: u32,
}

/// A warning and a critical level of a latency, in milliseconds.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LatencyLevels {
    #[serde(with = "super::millis")]
    pub warning_ms: Duration,
    #[serde(with = "super::millis")]
    pub critical_ms: Duration,
}

/// A warning and a critical level of a ratio or a count.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Levels {
    pub warning: f64,
    pub critical: f64,
}

/// Every monitoring threshold (`thresholds.*`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub websocket: WsThresholds,
    pub telegram: TelegramThresholds,
    pub response_time: ResponseTimeThresholds,
    pub error_rate: ErrorRateThresholds,
    pub resource: ResourceThresholds,
    pub connection_pool: ConnectionPoolThresholds,
    pub connection: ConnectionThresholds,
    pub slow_query: SlowQuery,
}

/// The WebSocket gateway's thresholds (`thresholds.websocket`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WsThresholds {
    pub message_latency: LatencyLevels,
    pub message_rate: MessageRate,
    pub error_rate: Levels,
    pub reconnect_rate: Levels,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MessageRate {
    /// Messages per second.
    pub max: u32,
    pub warning: u32,
}

/// Telegram's thresholds (`thresholds.telegram`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramThresholds {
    pub message_latency: LatencyLevels,
    /// Flood waits per hour.
    pub flood_wait: Levels,
    pub dc_latency: LatencyLevels,
}

/// Response-time levels of the API, the database and the WebSocket
/// gateway (`thresholds.response_time`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseTimeThresholds {
    pub api: ApiResponseTime,
    pub database: DatabaseResponseTime,
    pub websocket: WsResponseTime,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiResponseTime {
    #[serde(with = "super::millis")]
    pub p95_ms: Duration,
    #[serde(with = "super::millis")]
    pub p99_ms: Duration,
    #[serde(with = "super::millis")]
    pub max_ms: Duration,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseResponseTime {
    #[serde(with = "super::millis")]
    pub query_time_ms: Duration,
    #[serde(with = "super::millis")]
    pub transaction_time_ms: Duration,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WsResponseTime {
    #[serde(with = "super::millis")]
    pub message_latency_ms: Duration,
    #[serde(with = "super::millis")]
    pub reconnect_time_ms: Duration,
}

/// Error-rate levels of the API, the WebSocket gateway and Telegram
/// (`thresholds.error_rate`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRateThresholds {
    pub api: Levels,
    pub websocket: WsErrorRates,
    pub telegram: TelegramErrorRates,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WsErrorRates {
    pub disconnect_rate: f64,
    pub error_rate: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramErrorRates {
    pub auth_failure: f64,
    pub message_failure: f64,
}

/// Memory, CPU and storage levels, as fractions of the available total
/// (`thresholds.resource`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceThresholds {
    pub memory: Levels,
    pub cpu: Levels,
    pub storage: Levels,
}

/// The database pool's and the WebSocket gateway's connection levels
/// (`thresholds.connection_pool`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPoolThresholds {
    pub database: DbPoolThresholds,
    pub websocket: WsPoolThresholds,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DbPoolThresholds {
    pub max_size: u32,
    pub min_available: u32,
    pub max_waiting_clients: u32,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WsPoolThresholds {
    pub max_connections_per_user: u32,
    pub max_total_connections: u32,
    pub max_connection_rate: u32,
}

/// Response-time and error-rate levels of a connection
/// (`thresholds.connection`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionThresholds {
    pub response_time: LatencyLevels,
    pub error_rate: Levels,
}

/// Slow database queries: when one is logged and when collected for
/// analysis (`thresholds.slow_query`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlowQuery {
    /// Queries slower than this are logged (by statement shape) and counted.
    #[serde(with = "super::millis")]
    pub log_ms: Duration,
    /// Queries slower than this are collected for analysis.
    #[serde(with = "super::millis")]
    pub collect_min_ms: Duration,
}

/// Alerting (`alerting`): the channels and retries of each severity,
/// grouping, delivery and escalation, and the alert rules.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Alerting {
    pub high: SeverityPolicy,
    pub medium: SeverityPolicy,
    pub low: SeverityPolicy,
    /// A new alert waits this long before its first notification, so a
    /// burst of alerts goes out as one notification per channel.
    #[serde(with = "super::millis")]
    pub group_wait_ms: Duration,
    /// The tiers after a severity's own channels: an alert whose severity
    /// escalates and that nobody acknowledged moves to the next tier once
    /// its retries are spent (channel names, as in `channels`).
    pub escalation_tiers: Vec<Vec<String>>,
    /// Tries of one notification on one channel before it counts as failed.
    pub delivery_attempts: u32,
    /// The wait after a failed try; doubles per try.
    #[serde(with = "super::millis")]
    pub delivery_backoff_ms: Duration,
    /// One try's time limit.
    #[serde(with = "super::millis")]
    pub delivery_timeout_ms: Duration,
    /// Where the channels deliver (secrets: never serialized).
    #[serde(skip_serializing)]
    pub channels: super::AlertChannels,
    pub rules: AlertRules,
}

/// The channels an alert can go to.
pub const CHANNELS: [&str; 5] = ["logs", "slack", "email", "webhook", "alertmanager"];

impl Alerting {
    /// The policy of a severity (`high`, `medium`, `low`).
    pub fn policy(&self, severity: &str) -> &SeverityPolicy {
        match severity {
            "high" => &self.high,
            "medium" => &self.medium,
            _ => &self.low,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityPolicy {
    /// Channel names: logs, slack, email, webhook, alertmanager.
    pub channels: Vec<String>,
    pub escalation: bool,
    #[serde(with = "super::millis")]
    pub retry_interval_ms: Duration,
    pub max_retries: u32,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRules {
    pub connections: CountRule,
    pub errors: CountRule,
    pub performance: LatencyRule,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CountRule {
    pub threshold: u32,
    #[serde(with = "super::millis")]
    pub period_ms: Duration,
    pub action: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyRule {
    #[serde(with = "super::millis")]
    pub threshold_ms: Duration,
    #[serde(with = "super::millis")]
    pub period_ms: Duration,
    pub action: String,
}
