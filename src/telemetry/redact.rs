//! What never reaches a log line: values of sensitive fields, and secrets
//! that slipped into other values (JWTs, bearer tokens, phone numbers).

use regex::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

/// What replaces a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// Parts of field names whose values are never printed.
const SENSITIVE: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api_hash",
    "authorization",
    "auth_key",
    "session",
    "cookie",
    "phone",
    "pepper",
    "private_key",
    "signing_key",
    "encryption_key",
    "login_code",
    "phone_code",
    "otp",
    "database_url",
];

/// Suffixes that make a field harmless even if it mentions a secret
/// (`session_id`, `token_count`).
const HARMLESS_SUFFIXES: &[&str] = &["_id", "_count", "_total", "_len", "_kind"];

/// True when the value of a field with this name must not be logged.
pub fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if HARMLESS_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        return false;
    }
    SENSITIVE.iter().any(|s| name.contains(s))
}

static JWT: LazyLock<Regex> = LazyLock::new(|| {
    // unwrap: a constant, valid pattern.
    Regex::new(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*").unwrap()
});
static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    // unwrap: a constant, valid pattern.
    Regex::new(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+").unwrap()
});
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    // unwrap: a constant, valid pattern.
    // `%2B` is a percent-encoded `+`, as a phone number in a URL path reads.
    Regex::new(r"(?:\+|%2[Bb])\d[\d ().-]{5,}\d").unwrap()
});

/// Mask secrets inside a free-form value. Cheap when there is nothing to mask.
pub fn scrub(value: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(value);
    if out.contains("eyJ") {
        out = Cow::Owned(JWT.replace_all(&out, REDACTED).into_owned());
    }
    if out.contains("earer") || out.contains("EARER") {
        out = Cow::Owned(BEARER.replace_all(&out, "Bearer [REDACTED]").into_owned());
    }
    if out.contains('+') || out.contains("%2B") || out.contains("%2b") {
        out = Cow::Owned(PHONE.replace_all(&out, "+[REDACTED]").into_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_names_are_recognised() {
        for name in [
            "password",
            "new_password",
            "token",
            "access_token",
            "Authorization",
            "api_key",
            "auth_key",
            "session",
            "session_string",
            "phone",
            "phone_number",
            "jwt_signing_key",
        ] {
            assert!(is_sensitive(name), "{name}");
        }
        for name in [
            "user_id",
            "session_id",
            "method",
            "route",
            "status",
            "token_count",
            "message",
        ] {
            assert!(!is_sensitive(name), "{name}");
        }
    }

    #[test]
    fn secrets_inside_values_are_masked() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl";
        let line = format!("rejected {jwt} from Bearer abc.def-ghi for +1 (555) 123-4567");
        let out = scrub(&line);
        assert!(!out.contains(jwt));
        assert!(!out.contains("abc.def-ghi"));
        assert!(!out.contains("555"));
        assert!(out.contains("rejected"));
        assert_eq!(scrub("plain text, 42 + 1"), "plain text, 42 + 1");
        // A number percent-encoded in a URL path.
        let path = scrub("/api/v1/accounts/%2B9996621234/x and %2b999 662 1234");
        assert!(
            !path.contains("9996621234") && !path.contains("999 662"),
            "{path}"
        );
    }
}
