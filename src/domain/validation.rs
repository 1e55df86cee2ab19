//! Input validation at the API boundary: "parse, don't validate".
//!
//! Owns the newtypes that untrusted input is parsed into before it reaches
//! the domain ([`Username`], [`Email`], [`Password`], [`PhoneNumber`],
//! [`ChatRef`]) and the one error type they share, [`ValidationError`],
//! whose `field`/`code` pair is a stable contract with API clients. Types
//! that hold sensitive data keep it out of `Debug`/`Display`.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// A rejected input: which field, a stable machine code, and a message safe
/// to show (it never repeats the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Input field name, e.g. `"username"`.
    pub field: &'static str,
    /// Stable code, e.g. `"too_short"`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: &'static str,
}

impl ValidationError {
    /// Builds an error.
    pub const fn new(field: &'static str, code: &'static str, message: &'static str) -> Self {
        Self {
            field,
            code,
            message,
        }
    }
}

/// Implements `FromStr`, `TryFrom<String>` and `Deserialize` (via
/// `TryFrom<String>`) in terms of `parse`.
macro_rules! parse_impls {
    ($ty:ty) => {
        impl FromStr for $ty {
            type Err = ValidationError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = ValidationError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }
    };
}

/// Implements `Display` and `Serialize` from a `&str` accessor.
macro_rules! string_impls {
    ($ty:ty) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

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

/// Format characters that change how text reads without showing:
/// bidirectional overrides (`invoice\u{202E}fdp.exe` shows as
/// `invoiceexe.pdf`), zero-width characters, the byte-order mark.
pub fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
    )
}

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn code<T: fmt::Debug>(r: Result<T, ValidationError>) -> (&'static str, &'static str) {
        let e = r.unwrap_err();
        (e.field, e.code)
    }

    #[test]
    fn username_length_boundaries_count_characters() {
        assert_eq!(code(Username::parse("ab")), ("username", "too_short"));
        assert_eq!(Username::parse("abc").unwrap().as_str(), "abc");
        assert!(Username::parse(&"a".repeat(50)).is_ok());
        assert_eq!(
            code(Username::parse(&"a".repeat(51))),
            ("username", "too_long")
        );
        // Three Cyrillic letters are six bytes but three characters.
        assert_eq!(Username::parse("Зоя").unwrap().as_str(), "Зоя");
        assert_eq!(code(Username::parse("Зо")), ("username", "too_short"));
        assert!(Username::parse(&"ж".repeat(50)).is_ok());
        assert_eq!(
            code(Username::parse(&"ж".repeat(51))),
            ("username", "too_long")
        );
    }

    #[test]
    fn username_is_trimmed_and_rejects_empty_and_odd_characters() {
        assert_eq!(
            Username::parse("  alice_1.x-y \n").unwrap().as_str(),
            "alice_1.x-y"
        );
        assert_eq!(code(Username::parse("")), ("username", "empty"));
        assert_eq!(code(Username::parse("   \t")), ("username", "empty"));
        assert_eq!(code(Username::parse("  ab  ")), ("username", "too_short"));
        for bad in [
            "al ice",
            "bob@x",
            "a/b/c",
            "emoji😀",
            "tab\tname",
            "e\u{301}vil",
            "x\u{200b}yz",
        ] {
            assert_eq!(
                code(Username::parse(bad)),
                ("username", "invalid_chars"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn username_deserializes_through_parse() {
        let u: Username = serde_json::from_str("\" carol \"").unwrap();
        assert_eq!(u.as_str(), "carol");
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"carol\"");
        let err = serde_json::from_str::<Username>("\"x\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("username: must be at least 3 characters")
        );
    }

    #[test]
    fn email_accepts_ordinary_addresses_and_lowercases_the_domain() {
        assert_eq!(
            Email::parse("Bob.Smith+tg@Example.COM").unwrap().as_str(),
            "Bob.Smith+tg@example.com"
        );
        assert_eq!(Email::parse("  a@b.io ").unwrap().as_str(), "a@b.io");
        assert!(Email::parse("x@mail.sub-domain.example.org").is_ok());
    }

    #[test]
    fn new_usernames_are_written_in_one_script() {
        for ok in [
            "alice",
            "alice_2026",
            "боб",
            "ёжик-7",
            "山田太郎",
            "やまだ",
            "Zoë.d",
        ] {
            assert!(Username::parse_new(ok).is_ok(), "{ok}");
        }
        // A Cyrillic а among Latin letters; a Greek ο among Latin letters.
        for mixed in ["\u{430}lice", "b\u{3bf}b"] {
            assert_eq!(
                Username::parse_new(mixed).unwrap_err().code,
                "mixed_scripts",
                "{mixed}"
            );
            // Existing users with such names can still log in.
            assert!(Username::parse(mixed).is_ok());
        }
    }

    #[test]
    fn emails_refuse_invisible_formatting_characters() {
        for bad in ["a\u{202E}moc.b@x.io", "a\u{200B}b@x.io", "ab@x\u{2066}.io"] {
            assert_eq!(
                Email::parse(bad).unwrap_err().code,
                "invalid_chars",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn email_rejections_have_specific_codes() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("no-at-sign.example.com", "invalid_format"),
            ("a@b@example.com", "invalid_format"),
            ("@example.com", "invalid_local_part"),
            ("a b@example.com", "invalid_chars"),
            ("a@exa mple.com", "invalid_chars"),
            ("a@localhost", "invalid_domain"),
            ("a@", "invalid_domain"),
            ("a@.example.com", "invalid_domain"),
            ("a@example..com", "invalid_domain"),
            ("a@example.com.", "invalid_domain"),
            ("a@-example.com", "invalid_domain"),
            ("a@exämple.com", "invalid_domain"),
        ];
        for (input, expected) in cases {
            assert_eq!(code(Email::parse(input)), ("email", expected), "{input:?}");
        }
    }

    #[test]
    fn email_length_limits() {
        let local64 = "l".repeat(64);
        assert!(Email::parse(&format!("{local64}@example.com")).is_ok());
        let local65 = "l".repeat(65);
        assert_eq!(
            code(Email::parse(&format!("{local65}@example.com"))),
            ("email", "invalid_local_part")
        );
        // 254 bytes total: 64 + 1 + 189 (three 61-byte labels, dots, "com").
        let domain = format!("{0}.{0}.{0}.com", "d".repeat(61));
        let at_limit = format!("{local64}@{domain}");
        assert_eq!(at_limit.len(), 254);
        assert!(Email::parse(&at_limit).is_ok());
        assert_eq!(
            code(Email::parse(&format!("x{at_limit}"))),
            ("email", "too_long")
        );
    }

    #[test]
    fn password_length_boundaries_count_characters() {
        assert_eq!(code(Password::parse("")), ("password", "empty"));
        assert_eq!(code(Password::parse("1234567")), ("password", "too_short"));
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"p".repeat(128)).is_ok());
        assert_eq!(
            code(Password::parse(&"p".repeat(129))),
            ("password", "too_long")
        );
        // Eight 2-byte characters are long enough; seven 4-byte ones are not.
        assert!(Password::parse("пароль12").is_ok());
        assert_eq!(
            code(Password::parse("😀😀😀😀😀😀😀")),
            ("password", "too_short")
        );
        assert!(Password::parse(&"ж".repeat(128)).is_ok());
        assert_eq!(
            code(Password::parse(&"ж".repeat(129))),
            ("password", "too_long")
        );
    }

    #[test]
    fn password_keeps_whitespace_and_never_shows_itself() {
        let p = Password::parse("  spaced out  ").unwrap();
        assert_eq!(p.expose_secret(), "  spaced out  ");
        assert_eq!(format!("{p:?}"), "Password([REDACTED])");
        let p: Password = serde_json::from_str("\"hunter2hunter2\"").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
        assert_eq!(p.into_secret().expose_secret(), "hunter2hunter2");
        let err = serde_json::from_str::<Password>("\"hunter2\"").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn phone_accepts_formatting_and_strips_it() {
        let p = PhoneNumber::parse("+1 (555) 123-4567").unwrap();
        assert_eq!(p.as_e164(), "+15551234567");
        assert_eq!(
            PhoneNumber::parse("+9996612345").unwrap().as_e164(),
            "+9996612345"
        );
    }

    #[test]
    fn phone_digit_count_boundaries() {
        assert_eq!(code(PhoneNumber::parse("+123456")), ("phone", "too_short"));
        assert!(PhoneNumber::parse("+1234567").is_ok());
        assert!(PhoneNumber::parse("+123456789012345").is_ok());
        assert_eq!(
            code(PhoneNumber::parse("+1234567890123456")),
            ("phone", "too_long")
        );
    }

    #[test]
    fn phone_rejections_have_specific_codes() {
        let cases = [
            ("", "empty"),
            ("  ", "empty"),
            ("15551234567", "missing_plus"),
            ("0015551234567", "missing_plus"),
            ("+1555abc4567", "invalid_chars"),
            ("+1.555.123.4567", "invalid_chars"),
            ("+1555+1234567", "invalid_chars"),
            ("+１５５５１２３４５６７", "invalid_chars"),
            ("+05551234567", "invalid_country_code"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                code(PhoneNumber::parse(input)),
                ("phone", expected),
                "{input:?}"
            );
        }
    }

    #[test]
    fn phone_debug_and_display_mask_all_but_two_digits() {
        let p = PhoneNumber::parse("+12345678934").unwrap();
        assert_eq!(p.to_string(), "+*********34");
        assert_eq!(format!("{p:?}"), "PhoneNumber(+*********34)");
        assert!(!format!("{p:?}").contains("123"));
        let p: PhoneNumber = serde_json::from_str("\"+44 20 7946 0958\"").unwrap();
        assert_eq!(p.as_e164(), "+442079460958");
        assert_eq!(p.to_string(), "+**********58");
        let err = PhoneNumber::parse("5551234567").unwrap_err();
        assert!(!err.to_string().contains("555"));
    }

    #[test]
    fn chat_ref_parses_each_form() {
        assert_eq!(ChatRef::parse("me").unwrap(), ChatRef::Me);
        assert_eq!(ChatRef::parse(" SELF ").unwrap(), ChatRef::Me);
        assert_eq!(
            ChatRef::parse("@durov").unwrap(),
            ChatRef::Username("durov".into())
        );
        assert_eq!(
            ChatRef::parse("@Tg_Bot_2").unwrap(),
            ChatRef::Username("tg_bot_2".into()),
            "usernames are case-insensitive: one spelling"
        );
        assert_eq!(ChatRef::parse("12345").unwrap(), ChatRef::Id(12345));
        assert_eq!(
            ChatRef::parse("-1001234567890").unwrap(),
            ChatRef::Id(-1001234567890)
        );
        assert_eq!(
            ChatRef::parse(&i64::MIN.to_string()).unwrap(),
            ChatRef::Id(i64::MIN)
        );
    }

    #[test]
    fn chat_username_boundaries_follow_telegram() {
        assert_eq!(code(ChatRef::parse("@abc")), ("chat", "invalid_username"));
        assert!(
            ChatRef::parse("@abcd").is_ok(),
            "collectible 4-character names"
        );
        assert!(ChatRef::parse("@abcde").is_ok());
        assert!(ChatRef::parse(&format!("@{}", "a".repeat(32))).is_ok());
        let long = format!("@{}", "a".repeat(33));
        assert_eq!(code(ChatRef::parse(&long)), ("chat", "invalid_username"));
        for bad in [
            "@",
            "@1abcde",
            "@_abcde",
            "@abc-de",
            "@abc de",
            "@@abcde",
            "@дуров_",
        ] {
            assert_eq!(
                code(ChatRef::parse(bad)),
                ("chat", "invalid_username"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn chat_ref_rejects_other_input() {
        assert_eq!(code(ChatRef::parse("")), ("chat", "empty"));
        assert_eq!(code(ChatRef::parse("   ")), ("chat", "empty"));
        assert_eq!(code(ChatRef::parse("0")), ("chat", "invalid_id"));
        assert_eq!(code(ChatRef::parse("-0")), ("chat", "invalid_id"));
        assert_eq!(
            code(ChatRef::parse("99999999999999999999")),
            ("chat", "invalid_id")
        );
        for bad in ["durov", "+123", "-", "12a", "1 2", "mee"] {
            assert_eq!(
                code(ChatRef::parse(bad)),
                ("chat", "invalid_format"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn chat_ref_display_round_trips() {
        for input in ["me", "self", "@durov", "@Tg_Bot_2", "42", "-1001234567890"] {
            let parsed = ChatRef::parse(input).unwrap();
            assert_eq!(
                ChatRef::parse(&parsed.to_string()).unwrap(),
                parsed,
                "{input}"
            );
        }
        assert_eq!(ChatRef::parse("self").unwrap().to_string(), "me");
        assert_eq!(ChatRef::Username("durov".into()).to_string(), "@durov");
    }

    #[test]
    fn chat_ref_serde_accepts_strings_and_integers() {
        let refs: Vec<ChatRef> =
            serde_json::from_str(r#"["me", "@durov", "-100", -100, 7]"#).unwrap();
        assert_eq!(
            refs,
            [
                ChatRef::Me,
                ChatRef::Username("durov".into()),
                ChatRef::Id(-100),
                ChatRef::Id(-100),
                ChatRef::Id(7)
            ]
        );
        assert_eq!(
            serde_json::to_string(&refs).unwrap(),
            r#"["me","@durov","-100","-100","7"]"#
        );
        assert!(serde_json::from_str::<ChatRef>("0").is_err());
        assert!(serde_json::from_str::<ChatRef>("\"bad name\"").is_err());
        assert!(serde_json::from_str::<ChatRef>("1.5").is_err());
    }

    #[test]
    fn errors_display_field_and_message_only() {
        let e = Username::parse("secret-but-way-too-long-username-secret-but-way-too-long")
            .unwrap_err();
        assert_eq!(e.to_string(), "username: must be at most 50 characters");
    }
}
