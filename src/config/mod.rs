//! Layered, typed configuration.
//!
//! `config/default.toml` (compiled in) -> `config/{TGVISOR_ENV}.toml` (from
//! `TGVISOR_CONFIG_DIR`, default `./config`) -> in development the generated
//! `{data_dir}/secrets.toml` -> environment variables `TGVISOR__SECTION__KEY`.
//! Every struct denies unknown fields, so a typo is an error naming the key.

mod limits;
mod secrets;

pub use limits::*;
pub use secrets::{
    DEV_SECRETS_FILE, KeySet, Secrets, create_private_dir, ensure_dev_secrets, random_key,
};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The compiled-in defaults.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Which set of overrides applies (`TGVISOR_ENV`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Development,
    Production,
    Test,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Production => "production",
            Environment::Test => "test",
        }
    }

    /// Read `TGVISOR_ENV` (development when unset).
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var("TGVISOR_ENV") {
            Ok(v) => v.parse(),
            Err(_) => Ok(Environment::Development),
        }
    }
}

impl std::str::FromStr for Environment {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Environment::Development),
            "production" | "prod" => Ok(Environment::Production),
            "test" => Ok(Environment::Test),
            other => Err(ConfigError::Invalid(format!(
                "TGVISOR_ENV must be development, production or test, not {other:?}"
            ))),
        }
    }
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key is unknown, missing or of the wrong type (the message names it).
    #[error("configuration error: {0}")]
    Parse(#[from] Box<figment::Error>),
    #[error("configuration error: {0}")]
    Invalid(String),
    #[error("could not prepare the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where alert channels deliver. A channel without its address (no URL,
/// no SMTP host) is not configured: alerts routed to it go to the logs
/// instead, and start-up says so.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertChannels {
    pub slack: SlackChannel,
    pub email: EmailChannel,
    pub webhook: WebhookChannel,
    pub alertmanager: AlertmanagerChannel,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackChannel {
    /// A Slack incoming-webhook URL (a secret: it is the credential).
    pub webhook_url: Option<SecretString>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannel {
    /// Receives a JSON POST per notification (may carry a token).
    pub url: Option<SecretString>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerChannel {
    /// Alertmanager's base URL, e.g. `http://alertmanager:9093`; alerts
    /// are posted to its v2 API (`/api/v2/alerts`). Secret: it may carry
    /// credentials.
    pub url: Option<SecretString>,
    /// What reached Alertmanager and still fires (acknowledged or not) is
    /// posted again this often: Alertmanager resolves an alert nobody
    /// posts again (each post is valid for five minutes).
    pub refresh_ms: u64,
}

impl Default for AlertmanagerChannel {
    fn default() -> Self {
        Self {
            url: None,
            refresh_ms: 60_000,
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text (a relay on loopback).
    None,
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// STARTTLS or fail.
    #[default]
    Required,
    /// TLS from the first byte (port 465).
    Wrapper,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailChannel {
    /// Unset: e-mail is not configured.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    /// Certificates the server may present besides the system's roots
    /// (PEM file), for a private CA.
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from: String,
    pub to: Vec<String>,
}

impl Default for EmailChannel {
    fn default() -> Self {
        Self {
            smtp_host: None,
            smtp_port: 587,
            tls: SmtpTls::Required,
            ca_file: None,
            username: None,
            password: None,
            from: "tgvisor <tgvisor@localhost>".to_owned(),
            to: Vec::new(),
        }
    }
}

/// The HealthMonitor's sampling.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// Snapshots for the windowed figures, and a judgement of every
    /// component, this often.
    pub sample_interval_ms: u64,
    /// Rates and percentiles cover about this much of the recent past.
    pub window_ms: u64,
    /// A check that takes longer is unhealthy (the endpoint answers).
    pub check_timeout_ms: u64,
    /// Events a windowed ratio, mean or percentile needs (requests,
    /// frames, connections, messages, statements, deliveries) before it is
    /// judged: one failure out of one is not a failure rate.
    pub min_volume: u64,
    /// On shutdown, `/health/ready` answers 503 this long while everything
    /// still serves, so load balancers stop sending traffic before the
    /// listener closes (a second signal cuts it short).
    pub drain_ms: u64,
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
    pub shutdown_timeout_ms: u64,
    pub max_json_bytes: usize,
    /// How long a request's body may take to arrive after its headers.
    pub body_timeout_ms: u64,
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
    pub idle_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub max_lifetime_ms: u64,
    pub health_check_interval_ms: u64,
    pub ping_timeout_ms: u64,
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
    pub period_ms: u64,
    pub reset_after_ms: u64,
    pub shutdown_timeout_ms: u64,
    pub backoff: BackoffSettings,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffSettings {
    pub base_ms: u64,
    pub factor: f64,
    pub cap_ms: u64,
    pub jitter: f64,
}

impl SupervisionSettings {
    /// The policy every supervisor of the tree starts with.
    pub fn policy(&self) -> crate::supervisor::SupervisionPolicy {
        crate::supervisor::SupervisionPolicy {
            max_restarts: self.max_restarts,
            period: Duration::from_millis(self.period_ms),
            backoff: crate::supervisor::Backoff {
                base: Duration::from_millis(self.backoff.base_ms),
                factor: self.backoff.factor,
                cap: Duration::from_millis(self.backoff.cap_ms),
                jitter: self.backoff.jitter,
            },
            reset_after: Duration::from_millis(self.reset_after_ms),
            shutdown_timeout: Duration::from_millis(self.shutdown_timeout_ms),
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
    pub health_check_interval_ms: u64,
    pub session_rotation_interval_ms: u64,
    pub max_session_age_ms: u64,
    pub session_error_threshold: u32,
    /// Every Telegram call runs under this timeout (grammers has none of its own).
    pub request_timeout_ms: u64,
    /// How often at most a connected account commits the update state that
    /// updates announcing nothing reached (updates announcing an event
    /// commit it with the event).
    pub update_state_sync_interval_ms: u64,
    /// How long a sign-in waits for its code or 2FA password.
    pub pending_login_ttl_ms: u64,
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
    pub period_ms: u64,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketSettings {
    pub heartbeat_interval_ms: u64,
    pub client_timeout_ms: u64,
    pub auth_timeout_ms: u64,
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
    pub base_delay_ms: u64,
}

/// The event log's retention: what a subscriber can still resume from.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// Events older than this are pruned.
    pub retention_max_age_ms: u64,
    /// At most this many events are kept per topic (the newest).
    pub retention_max_per_topic: u64,
    /// How often the log is pruned.
    pub prune_interval_ms: u64,
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
    pub retry_base_ms: u64,
    /// `upload.progress` events (and progress in the database) at most
    /// this often per job, plus one at the end.
    pub progress_interval_ms: u64,
    /// A job's FLOOD_WAIT pauses add up to at most this; beyond it the job
    /// fails (`flood_wait`, with the time to wait).
    pub max_pause_ms: u64,
    /// A body that sends nothing for this long fails its job
    /// (`body_timeout`, 408).
    pub body_idle_timeout_ms: u64,
    /// Jobs receiving at once, all accounts together (503
    /// `too_many_uploads` beyond).
    pub max_running: u32,
    /// How often the uploader actor fails unfinished jobs that no request
    /// runs any more (and at each of its starts).
    pub sweep_interval_ms: u64,
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
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
    /// Delivered and failed messages, and their idempotency keys, are kept
    /// this long; then they are deleted.
    pub retention_ms: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    pub default_ttl_ms: u64,
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
    pub revocation_check_ms: u64,
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
    pub max_wait_ms: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DebugSettings {
    /// Registers `POST /debug/actors/panic`. Never enable in production.
    pub fault_injection: bool,
}

fn config_dir() -> PathBuf {
    std::env::var_os("TGVISOR_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("config"))
}

/// The layers without secrets-file and environment variables.
fn file_layers(environment: Environment) -> Figment {
    Figment::new()
        .merge(Toml::string(DEFAULT_TOML))
        .merge(Toml::file(
            config_dir().join(format!("{}.toml", environment.as_str())),
        ))
}

fn env_layer() -> Env {
    Env::prefixed("TGVISOR__").split("__")
}

impl Settings {
    /// Load configuration for the environment named by `TGVISOR_ENV`,
    /// generating development secrets on first start.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_for(Environment::from_env()?)
    }

    /// Load for `environment`, from files and environment variables.
    pub fn load_for(environment: Environment) -> Result<Self, ConfigError> {
        let mut figment = file_layers(environment);
        if environment == Environment::Development {
            let data_dir: PathBuf = figment
                .clone()
                .merge(env_layer())
                .extract_inner("data_dir")
                .map_err(|e| ConfigError::Parse(Box::new(e)))?;
            let (path, created) =
                ensure_dev_secrets(&data_dir).map_err(|source| ConfigError::DataDir {
                    path: data_dir.clone(),
                    source,
                })?;
            if created {
                // Telemetry is not up yet; this goes to stderr once.
                eprintln!(
                    "WARNING: generated development secrets in {} (never use them in production)",
                    path.display()
                );
            }
            figment = figment.merge(Toml::file(path));
        }
        Self::from_figment(figment.merge(env_layer()), environment)
    }

    /// The compiled-in defaults plus `overrides` (tests and tools).
    pub fn from_defaults(
        environment: Environment,
        overrides: Figment,
    ) -> Result<Self, ConfigError> {
        let figment = Figment::new()
            .merge(Toml::string(DEFAULT_TOML))
            .merge(overrides);
        Self::from_figment(figment, environment)
    }

    fn from_figment(figment: Figment, environment: Environment) -> Result<Self, ConfigError> {
        let mut settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        settings.environment = environment;
        settings.validate()?;
        Ok(settings)
    }

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
        const WEEK_MS: u64 = 7 * 24 * 3600 * 1000;
        for p in [&a.high, &a.medium, &a.low] {
            if !(1000..=WEEK_MS).contains(&p.retry_interval_ms) {
                problems
                    .push("alerting.*.retry_interval_ms must be from 1000 to a week".to_owned());
                break;
            }
        }
        if !(100..=240_000).contains(&a.channels.alertmanager.refresh_ms) {
            problems.push(
                "alerting.channels.alertmanager.refresh_ms must be from 100 to 240000 (each post is valid for 5 minutes)"
                    .to_owned(),
            );
        }
        if a.group_wait_ms > 3_600_000 || a.delivery_timeout_ms > 3_600_000 {
            problems.push(
                "alerting.group_wait_ms and delivery_timeout_ms must be at most an hour".to_owned(),
            );
        }
        for (name, rule) in [
            ("connections", &a.rules.connections),
            ("errors", &a.rules.errors),
        ] {
            if rule.period_ms > WEEK_MS {
                problems.push(format!(
                    "alerting.rules.{name}.period_ms must be at most a week"
                ));
            }
        }
        if a.rules.performance.period_ms > WEEK_MS {
            problems.push("alerting.rules.performance.period_ms must be at most a week".to_owned());
        }
        let h = &self.health;
        if h.sample_interval_ms < 100
            || h.window_ms < h.sample_interval_ms
            || h.check_timeout_ms == 0
            || h.min_volume == 0
        {
            problems.push(
                "health: sample_interval_ms >= 100, window_ms >= sample_interval_ms, check_timeout_ms > 0, min_volume > 0".to_owned(),
            );
        }
        if self.uploads.sweep_interval_ms < 1000 {
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

    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        use secrecy::ExposeSecret;
        match &self.database.url {
            Some(url) => url.expose_secret().to_owned(),
            None => sqlite_url(&self.data_dir.join("tgvisor.db")),
        }
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.server.shutdown_timeout_ms)
    }
}

/// A SQLite URL that creates the file when missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

#[cfg(test)]
mod tests;
