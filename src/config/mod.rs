//! Layered, typed configuration.
//!
//! `config/default.toml` (compiled in) -> `config/{TGVISOR_ENV}.toml` (from
//! `TGVISOR_CONFIG_DIR`, default `./config`) -> in development the generated
//! `{data_dir}/secrets.toml` -> environment variables `TGVISOR__SECTION__KEY`.
//! Every struct denies unknown fields, so a typo is an error naming the key.

mod channels;
mod environment;
mod limits;
mod load;
mod millis;
mod secrets;
mod sections;
mod validate;

pub use channels::*;
pub use environment::{ConfigError, Environment};
pub use limits::*;
pub use load::{DEFAULT_TOML, sqlite_url};
pub use secrets::{
    DEV_SECRETS_FILE, KeySet, Secrets, create_private_dir, ensure_dev_secrets, random_key,
};
pub use sections::*;

#[cfg(test)]
mod tests;
