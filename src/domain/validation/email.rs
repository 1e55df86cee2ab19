//! [`Email`]: an e-mail address after a pragmatic check.

use super::error::ValidationError;
use super::text::invisible;

use serde::Deserialize;

/// An email address after a pragmatic check: one `@`, a local part of 1–64
/// bytes, a dotted domain of LDH labels, at most 254 bytes, no whitespace or
/// control characters. The domain is lowercased; the local part is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Email(String);

impl Email {
    /// Maximum total length in bytes.
    pub const MAX_LEN: usize = 254;
    /// Maximum local-part length in bytes.
    pub const MAX_LOCAL_LEN: usize = 64;

    /// Parses an email address (surrounding whitespace is trimmed).
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        const F: &str = "email";
        let s = input.trim();
        if s.is_empty() {
            return Err(ValidationError::new(F, "empty", "is required"));
        }
        if s.len() > Self::MAX_LEN {
            let msg = "must be at most 254 characters";
            return Err(ValidationError::new(F, "too_long", msg));
        }
        if s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || invisible(c))
        {
            let msg = "must not contain spaces, control or invisible formatting characters";
            return Err(ValidationError::new(F, "invalid_chars", msg));
        }
        let invalid = ValidationError::new(F, "invalid_format", "is not a valid email address");
        let (local, domain) = s.split_once('@').ok_or(invalid)?;
        if domain.contains('@') {
            return Err(invalid);
        }
        if local.is_empty() || local.len() > Self::MAX_LOCAL_LEN {
            let msg = "the part before '@' must be 1 to 64 characters";
            return Err(ValidationError::new(F, "invalid_local_part", msg));
        }
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !domain.contains('.') || !domain.split('.').all(label_ok) {
            let msg = "the part after '@' must be a domain name like example.com";
            return Err(ValidationError::new(F, "invalid_domain", msg));
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The address, domain lowercased.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

parse_impls!(Email);
string_impls!(Email);
