//! Keyed digests of identifiers we must recognise but not store, such as
//! phone numbers: HMAC-SHA256 under a key derived from the pepper, so the
//! database alone cannot be brute-forced back to numbers (the space of phone
//! numbers is small enough that a plain hash could be).

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// Domain label mixed into the key derivation.
const PHONE_LABEL: &[u8] = b"tgvisor.phone-digest.v1";

/// Computes phone-number digests. `Debug` prints nothing secret.
#[derive(Clone)]
pub struct PhoneDigester {
    key: std::sync::Arc<SecretBox<[u8; 32]>>,
}

impl PhoneDigester {
    /// Derives the digest key from the pepper: HMAC(pepper, label).
    pub fn new(pepper: &SecretString) -> Self {
        let key: [u8; 32] = hmac_sha256(pepper.expose_secret().as_bytes(), PHONE_LABEL);
        Self {
            key: std::sync::Arc::new(SecretBox::new(Box::new(key))),
        }
    }

    /// Hex digest of an E.164 number (`+` and digits).
    pub fn digest(&self, e164: &str) -> String {
        let mac = hmac_sha256(self.key.expose_secret(), e164.as_bytes());
        mac.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for PhoneDigester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneDigester(..)")
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // unwrap: HMAC accepts keys of any length; new_from_slice cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn digests_are_stable_keyed_and_hide_the_number() {
        let a = PhoneDigester::new(&pepper("pepper-number-one-0123"));
        let b = PhoneDigester::new(&pepper("pepper-number-two-0123"));
        let d = a.digest("+15551234567");
        assert_eq!(d, a.digest("+15551234567"));
        assert_ne!(d, a.digest("+15551234568"));
        assert_ne!(d, b.digest("+15551234567"), "the key matters");
        assert_eq!(d.len(), 64);
        assert!(!d.contains("5551234567"));
    }

    #[test]
    fn matches_a_known_hmac_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn debug_prints_no_key() {
        let d = PhoneDigester::new(&pepper("pepper-number-one-0123"));
        assert_eq!(format!("{d:?}"), "PhoneDigester(..)");
    }
}
