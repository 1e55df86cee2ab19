//! Loading: the layers (compiled-in defaults, the environment's file, the
//! development secrets, environment variables) merged into [`Settings`].

use super::environment::{ConfigError, Environment};
use super::secrets::ensure_dev_secrets;
use super::sections::Settings;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The compiled-in defaults.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

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

    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        use secrecy::ExposeSecret;
        match &self.database.url {
            Some(url) => url.expose_secret().to_owned(),
            None => sqlite_url(&self.data_dir.join("tgvisor.db")),
        }
    }

    pub fn shutdown_timeout(&self) -> Duration {
        self.server.shutdown_timeout_ms
    }
}

/// A SQLite URL that creates the file when missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}
