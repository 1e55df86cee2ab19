//! [`PhoneNumber`]: an E.164 phone number, masked when shown.

use super::error::ValidationError;
use std::fmt;

use serde::Deserialize;

/// A phone number in E.164 form: `+` and 7–15 digits, the first not `0`.
///
/// Input may contain spaces, dashes and parentheses, which are removed.
/// `Debug` and `Display` mask all but the last two digits (`+*********34`);
/// use [`PhoneNumber::as_e164`] for the real value. Not `Serialize`, so it
/// cannot end up in a response or log by accident.
#[derive(Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Minimum number of digits.
    pub const MIN_DIGITS: usize = 7;
    /// Maximum number of digits (E.164).
    pub const MAX_DIGITS: usize = 15;

    /// Parses a phone number.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        const F: &str = "phone";
        let compact: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        if compact.is_empty() {
            return Err(ValidationError::new(F, "empty", "is required"));
        }
        let Some(digits) = compact.strip_prefix('+') else {
            let msg = "must start with '+' and the country code";
            return Err(ValidationError::new(F, "missing_plus", msg));
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            let msg = "may contain only digits after '+'";
            return Err(ValidationError::new(F, "invalid_chars", msg));
        }
        if digits.len() < Self::MIN_DIGITS {
            let msg = "must have at least 7 digits";
            return Err(ValidationError::new(F, "too_short", msg));
        }
        if digits.len() > Self::MAX_DIGITS {
            let msg = "must have at most 15 digits";
            return Err(ValidationError::new(F, "too_long", msg));
        }
        if digits.starts_with('0') {
            let msg = "country codes do not start with 0";
            return Err(ValidationError::new(F, "invalid_country_code", msg));
        }
        Ok(Self(compact))
    }

    /// The full number, e.g. `+15551234567`. Do not log it.
    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// `+` followed by `*` for every digit but the last two.
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let keep = digits.len().saturating_sub(2);
        format!("+{}{}", "*".repeat(keep), &digits[keep..])
    }
}

parse_impls!(PhoneNumber);

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}
