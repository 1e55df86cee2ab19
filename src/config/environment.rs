//! [`Environment`]: which set of overrides applies (`TGVISOR_ENV`), and
//! [`ConfigError`], why configuration could not be loaded.

use serde::Serialize;
use std::path::PathBuf;

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
