//! Security primitives: encryption at rest, password hashing, access
//! tokens, digests. Each submodule owns one concern. (Input validation is
//! the core vocabulary's: [`crate::domain::validation`].)

pub mod crypto;
pub mod digest;
pub mod jwt;
pub mod password;

use crate::config::Settings;
use anyhow::Context as _;
use std::sync::Arc;

/// The keys the service builds from configuration at start-up (never from
/// the database).
#[derive(Clone, Debug)]
pub struct SecurityContext {
    /// Seals Telegram sessions.
    pub session_keys: Arc<crypto::Keyring>,
    /// Keyed digests of phone numbers.
    pub phones: digest::PhoneDigester,
}

impl SecurityContext {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            session_keys: Arc::new(session_keyring(settings)?),
            phones: digest::PhoneDigester::new(
                settings
                    .secrets
                    .password_pepper
                    .as_ref()
                    .context("secrets.password_pepper is not configured")?,
            ),
        })
    }
}

/// The session keyring from `secrets.session`.
pub fn session_keyring(settings: &Settings) -> anyhow::Result<crypto::Keyring> {
    let set = settings
        .secrets
        .session
        .as_ref()
        .context("secrets.session is not configured")?;
    let active = crypto::KeyId::parse(&set.active)
        .map_err(|_| anyhow::anyhow!("secrets.session.active is not a valid key id"))?;
    let mut keys = Vec::with_capacity(set.keys.len());
    for (id, key) in &set.keys {
        let id = crypto::KeyId::parse(id)
            .map_err(|_| anyhow::anyhow!("secrets.session.keys: invalid key id"))?;
        keys.push((id, key.clone()));
    }
    crypto::Keyring::new(active, keys).map_err(|e| anyhow::anyhow!("secrets.session: {e}"))
}
