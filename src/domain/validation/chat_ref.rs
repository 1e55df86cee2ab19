//! [`ChatRef`]: which Telegram chat to act on.

use super::error::ValidationError;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which Telegram chat to act on.
///
/// Parsed from `me`/`self` (any case), `@username` (Telegram's rule: 4–32
/// characters from `[A-Za-z0-9_]`, starting with a letter; stored without
/// the `@`, case kept) or a non-zero integer id (negative for groups and
/// channels). `Display` gives back a string that parses to the same value.
/// Deserializes from a string or a JSON integer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChatRef {
    /// The account's own "Saved Messages".
    Me,
    /// A public username, without the leading `@`.
    Username(String),
    /// A numeric peer id.
    Id(i64),
}

impl ChatRef {
    /// Parses a chat reference (surrounding whitespace is trimmed).
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        const F: &str = "chat";
        let s = input.trim();
        if s.is_empty() {
            return Err(ValidationError::new(F, "empty", "is required"));
        }
        if s.eq_ignore_ascii_case("me") || s.eq_ignore_ascii_case("self") {
            return Ok(Self::Me);
        }
        if let Some(name) = s.strip_prefix('@') {
            return Self::parse_username(name);
        }
        let unsigned = s.strip_prefix('-').unwrap_or(s);
        if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
            let msg = "must be a non-zero 64-bit chat id";
            let invalid = ValidationError::new(F, "invalid_id", msg);
            return match s.parse::<i64>() {
                Ok(0) | Err(_) => Err(invalid),
                Ok(id) => Ok(Self::Id(id)),
            };
        }
        let msg = "must be 'me', '@username' or a numeric chat id";
        Err(ValidationError::new(F, "invalid_format", msg))
    }

    /// Telegram's username rule, applied to the part after `@`.
    fn parse_username(name: &str) -> Result<Self, ValidationError> {
        const F: &str = "chat";
        let len = name.len();
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            let msg = "usernames may contain only A-Z, a-z, 0-9 and '_'";
            return Err(ValidationError::new(F, "invalid_username", msg));
        }
        // 5–32 for ordinary usernames; 4-character collectible ones exist too.
        if !(4..=32).contains(&len) {
            let msg = "usernames are 4 to 32 characters";
            return Err(ValidationError::new(F, "invalid_username", msg));
        }
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            let msg = "usernames start with a letter";
            return Err(ValidationError::new(F, "invalid_username", msg));
        }
        // Telegram usernames are case-insensitive: one spelling per chat.
        Ok(Self::Username(name.to_ascii_lowercase()))
    }
}

parse_impls!(ChatRef);

impl fmt::Display for ChatRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Me => f.write_str("me"),
            Self::Username(name) => write!(f, "@{name}"),
            Self::Id(id) => write!(f, "{id}"),
        }
    }
}

impl Serialize for ChatRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChatRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Accepts both `"@name"`/`"-100123"` and `-100123`.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            /// A JSON integer.
            Int(i64),
            /// A JSON string.
            Str(String),
        }
        let parsed = match Raw::deserialize(d)? {
            Raw::Int(id) => ChatRef::parse(&id.to_string()),
            Raw::Str(s) => ChatRef::parse(&s),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}
