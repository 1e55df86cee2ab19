//! [`Username`]: a tgvisor login name.

use super::error::ValidationError;

use serde::Deserialize;

/// A tgvisor login name: 3–50 characters (Unicode letters, ASCII digits,
/// `_`, `.`, `-`) after trimming surrounding whitespace. Case is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Username(String);

impl Username {
    /// Minimum length in characters.
    pub const MIN_CHARS: usize = 3;
    /// Maximum length in characters.
    pub const MAX_CHARS: usize = 50;

    /// Parses a username.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        const F: &str = "username";
        let s = input.trim();
        let chars = s.chars().count();
        if chars == 0 {
            return Err(ValidationError::new(F, "empty", "is required"));
        }
        if chars < Self::MIN_CHARS {
            let msg = "must be at least 3 characters";
            return Err(ValidationError::new(F, "too_short", msg));
        }
        if chars > Self::MAX_CHARS {
            let msg = "must be at most 50 characters";
            return Err(ValidationError::new(F, "too_long", msg));
        }
        let allowed = |c: char| c.is_alphabetic() || c.is_ascii_digit() || "_.-".contains(c);
        if !s.chars().all(allowed) {
            let msg = "may contain only letters, digits, '_', '.' and '-'";
            return Err(ValidationError::new(F, "invalid_chars", msg));
        }
        Ok(Self(s.to_owned()))
    }

    /// Parses a username for a new user: as [`Username::parse`], and its
    /// letters in one script (UTS #39's resolved script set: Latin with
    /// digits and `_.-`, or Cyrillic, or Han with kana…), so that a name
    /// cannot mix lookalike letters of two scripts to pass for another
    /// (`аlice` with a Cyrillic `а` beside `alice`). Names registered
    /// before the rule still log in.
    pub fn parse_new(input: &str) -> Result<Self, ValidationError> {
        use unicode_security::MixedScript as _;
        let name = Self::parse(input)?;
        if !name.0.is_single_script() {
            let msg = "must be written in one script (do not mix, say, Latin and Cyrillic letters)";
            return Err(ValidationError::new("username", "mixed_scripts", msg));
        }
        Ok(name)
    }

    /// The username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

parse_impls!(Username);
string_impls!(Username);
