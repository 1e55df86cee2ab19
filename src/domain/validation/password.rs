//! [`Password`]: a new password, held as a secret.

use super::error::ValidationError;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use zeroize::Zeroize;

/// A new password: 8–128 characters, taken as given (not trimmed). Held as
/// a [`SecretString`]; `Debug` prints `Password([REDACTED])` and there is no
/// `Display` or `Serialize`.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Password(SecretString);

impl Password {
    /// Minimum length in characters.
    pub const MIN_CHARS: usize = 8;
    /// Maximum length in characters.
    pub const MAX_CHARS: usize = 128;

    /// Checks a password's length.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        Self::check(input)?;
        Ok(Self(SecretString::from(input)))
    }

    /// Length rules, shared by `parse` and `TryFrom<String>`.
    fn check(input: &str) -> Result<(), ValidationError> {
        const F: &str = "password";
        match input.chars().count() {
            0 => Err(ValidationError::new(F, "empty", "is required")),
            n if n < Self::MIN_CHARS => {
                let msg = "must be at least 8 characters";
                Err(ValidationError::new(F, "too_short", msg))
            }
            n if n > Self::MAX_CHARS => {
                let msg = "must be at most 128 characters";
                Err(ValidationError::new(F, "too_long", msg))
            }
            _ => Ok(()),
        }
    }

    /// The password, for hashing.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// Gives up the wrapper, e.g. to pass to the password hasher.
    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

impl TryFrom<String> for Password {
    type Error = ValidationError;

    /// Takes ownership without copying; a rejected input is zeroized.
    fn try_from(mut s: String) -> Result<Self, Self::Error> {
        match Self::check(&s) {
            Ok(()) => Ok(Self(SecretString::from(s))),
            Err(e) => {
                s.zeroize();
                Err(e)
            }
        }
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}
