//! [`Settings`], the whole configuration, and its sections other than the
//! limits, thresholds, alerting and secrets (`limits.rs`, `secrets.rs`).

use super::environment::Environment;
use super::limits::{Alerting, RateLimits, Thresholds};
use super::secrets::Secrets;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The HealthMonitor's sampling.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// Snapshots for the windowed figures, and a judgement of every
    /// component, this often.
    #[serde(with = "super::millis")]
    pub sample_interval_ms: Duration,
    /// Rates and percentiles cover about this much of the recent past.
    #[serde(with = "super::millis")]
    pub window_ms: Duration,
    /// A check that takes longer is unhealthy (the endpoint answers).
    #[serde(with = "super::millis")]
    pub check_timeout_ms: Duration,
    /// Events a windowed ratio, mean or percentile needs (requests,
    /// frames, connections, messages, statements, deliveries) before it is
    /// judged: one failure out of one is not a failure rate.
    pub min_volume: u64,
    /// On shutdown, `/health/ready` answers 503 this long while everything
    /// still serves, so load balancers stop sending traffic before the
    /// listener closes (a second signal cuts it short).
    #[serde(with = "super::millis")]
    pub drain_ms: Duration,
}

/// The whole configuration of one service instance.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Set from `TGVISOR_ENV`, not from files.
    #[serde(skip)]
    pub environment: Environment,
    /// Where SQLite and the development secrets live.
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub telemetry: TelemetrySettings,
    pub supervision: SupervisionSettings,
    pub telegram: TelegramSettings,
    pub rate_limits: RateLimits,
    pub websocket: WebSocketSettings,
    pub thresholds: Thresholds,
    pub alerting: Alerting,
    pub health: HealthSettings,
    pub cache: CacheSettings,
    pub outbox: OutboxSettings,
    pub events: EventSettings,
    pub uploads: UploadSettings,
    pub auth: AuthSettings,
    pub debug: DebugSettings,
    #[serde(default)]
    pub secrets: Secrets,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// HTTP worker threads; 0 = one per CPU core.
    pub workers: usize,
    #[serde(with = "super::millis")]
    pub shutdown_timeout_ms: Duration,
    pub max_json_bytes: usize,
    /// How long a request's body may take to arrive after its headers.
    #[serde(with = "super::millis")]
    pub body_timeout_ms: Duration,
    /// Open connections one client address may hold.
    pub max_connections_per_address: usize,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Unset: SQLite in `data_dir`. Kept secret: it may carry a password.
    pub url: Option<SecretString>,
    pub max_connections: u32,
    pub min_connections: u32,
    #[serde(with = "super::millis")]
    pub idle_timeout_ms: Duration,
    #[serde(with = "super::millis")]
    pub connect_timeout_ms: Duration,
    #[serde(with = "super::millis")]
    pub max_lifetime_ms: Duration,
    #[serde(with = "super::millis")]
    pub health_check_interval_ms: Duration,
    #[serde(with = "super::millis")]
    pub ping_timeout_ms: Duration,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisionSettings {
    pub max_restarts: u32,
    #[serde(with = "super::millis")]
    pub period_ms: Duration,
    #[serde(with = "super::millis")]
    pub reset_after_ms: Duration,
    #[serde(with = "super::millis")]
    pub shutdown_timeout_ms: Duration,
    pub backoff: BackoffSettings,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffSettings {
    #[serde(with = "super::millis")]
    pub base_ms: Duration,
    pub factor: f64,
    #[serde(with = "super::millis")]
    pub cap_ms: Duration,
    pub jitter: f64,
}

impl SupervisionSettings {
    /// The policy every supervisor of the tree starts with.
    pub fn policy(&self) -> crate::supervisor::SupervisionPolicy {
        crate::supervisor::SupervisionPolicy {
            max_restarts: self.max_restarts,
            period: self.period_ms,
            backoff: crate::supervisor::Backoff {
                base: self.backoff.base_ms,
                factor: self.backoff.factor,
                cap: self.backoff.cap_ms,
                jitter: self.backoff.jitter,
            },
            reset_after: self.reset_after_ms,
            shutdown_timeout: self.shutdown_timeout_ms,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TelegramBackend {
    Sim,
    Grammers,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSettings {
    pub backend: TelegramBackend,
    pub api_id: i32,
    pub api_hash: Option<SecretString>,
    pub client_pool_size: u32,
    /// Client slots one user's accounts may hold (0: the whole pool).
    pub max_clients_per_user: u32,
    #[serde(with = "super::millis")]
    pub health_check_interval_ms: Duration,
    #[serde(with = "super::millis")]
    pub session_rotation_interval_ms: Duration,
    #[serde(with = "super::millis")]
    pub max_session_age_ms: Duration,
    pub session_error_threshold: u32,
    /// Every Telegram call runs under this timeout (grammers has none of its own).
    #[serde(with = "super::millis")]
    pub request_timeout_ms: Duration,
    /// How often at most a connected account commits the update state that
    /// updates announcing nothing reached (updates announcing an event
    /// commit it with the event).
    #[serde(with = "super::millis")]
    pub update_state_sync_interval_ms: Duration,
    /// How long a sign-in waits for its code or 2FA password.
    #[serde(with = "super::millis")]
    pub pending_login_ttl_ms: Duration,
    /// Sign-ins waiting for a code or password at once, per node and per user.
    pub max_pending_logins: u32,
    pub max_pending_logins_per_user: u32,
    /// Wrong codes or passwords accepted per sign-in before it is dropped.
    pub login_attempts: u32,
    /// Restarts of one account's actor: more than `max_restarts` within
    /// `period_ms` give that account up (`failed`).
    pub account_restarts: AccountRestartSettings,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRestartSettings {
    pub max_restarts: u32,
    #[serde(with = "super::millis")]
    pub period_ms: Duration,
    #[serde(with = "super::millis")]
    pub backoff_base_ms: Duration,
    #[serde(with = "super::millis")]
    pub backoff_cap_ms: Duration,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketSettings {
    #[serde(with = "super::millis")]
    pub heartbeat_interval_ms: Duration,
    #[serde(with = "super::millis")]
    pub client_timeout_ms: Duration,
    #[serde(with = "super::millis")]
    pub auth_timeout_ms: Duration,
    /// Frames waiting to be written to one client; a client that lets more
    /// pile up is closed with 4010 (slow consumer) instead of growing memory.
    pub send_queue: u32,
    /// Events read from the log per query when replaying a subscription.
    pub replay_page: u32,
    /// Connections one address may hold open before authenticating (they
    /// count against the total limit until then).
    pub unauthenticated_per_ip: u32,
    pub reconnect: ReconnectSettings,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReconnectSettings {
    pub max_retries: u32,
    #[serde(with = "super::millis")]
    pub base_delay_ms: Duration,
}

/// The event log's retention: what a subscriber can still resume from.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// Events older than this are pruned.
    #[serde(with = "super::millis")]
    pub retention_max_age_ms: Duration,
    /// At most this many events are kept per topic (the newest).
    pub retention_max_per_topic: u64,
    /// How often the log is pruned.
    #[serde(with = "super::millis")]
    pub prune_interval_ms: Duration,
}

/// Upload jobs (`POST /accounts/{id}/uploads`). Sizes and the per-account
/// rate are `rate_limits.telegram.media_uploads`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSettings {
    /// Parts of one big file (over 10 MiB) in flight at once; also how
    /// many 512 KiB parts one upload holds in memory at most.
    pub parallel_parts: u32,
    /// Tries per part before the job fails (a FLOOD_WAIT does not count).
    pub part_attempts: u32,
    /// First wait after a failed part; doubles per try, up to 8 s.
    #[serde(with = "super::millis")]
    pub retry_base_ms: Duration,
    /// `upload.progress` events (and progress in the database) at most
    /// this often per job, plus one at the end.
    #[serde(with = "super::millis")]
    pub progress_interval_ms: Duration,
    /// A job's FLOOD_WAIT pauses add up to at most this; beyond it the job
    /// fails (`flood_wait`, with the time to wait).
    #[serde(with = "super::millis")]
    pub max_pause_ms: Duration,
    /// A body that sends nothing for this long fails its job
    /// (`body_timeout`, 408).
    #[serde(with = "super::millis")]
    pub body_idle_timeout_ms: Duration,
    /// Jobs receiving at once, all accounts together (503
    /// `too_many_uploads` beyond).
    pub max_running: u32,
    /// How often the uploader actor fails unfinished jobs that no request
    /// runs any more (and at each of its starts).
    #[serde(with = "super::millis")]
    pub sweep_interval_ms: Duration,
}

/// The durable outbox (`POST /accounts/{id}/messages`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    /// Accepted messages are inserted in batches (group commit): at most this
    /// many rows per transaction.
    pub max_batch: u32,
    /// Transient failures (network, timeout, Telegram 5xx) a message may meet
    /// before it is marked failed. Flood waits do not count.
    pub max_attempts: u32,
    /// Delay before the retry after a transient failure, doubling up to the cap.
    #[serde(with = "super::millis")]
    pub retry_base_ms: Duration,
    #[serde(with = "super::millis")]
    pub retry_cap_ms: Duration,
    /// Delivered and failed messages, and their idempotency keys, are kept
    /// this long; then they are deleted.
    #[serde(with = "super::millis")]
    pub retention_ms: Duration,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    #[serde(with = "super::millis")]
    pub default_ttl_ms: Duration,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub token_ttl_secs: u64,
    pub issuer: String,
    pub audience: String,
    pub registration_open: bool,
    pub token_cache_capacity: u64,
    /// How long a cached token version and role are trusted.
    #[serde(with = "super::millis")]
    pub revocation_check_ms: Duration,
    pub password: PasswordSettings,
}

/// argon2id cost parameters for new password hashes.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSettings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// How many password checks may wait for an argon2 slot.
    pub max_waiting: u32,
    /// How long one may wait.
    #[serde(with = "super::millis")]
    pub max_wait_ms: Duration,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DebugSettings {
    /// Registers `POST /debug/actors/panic`. Never enable in production.
    pub fault_injection: bool,
}
