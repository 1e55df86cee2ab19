//! Encryption at rest for Telegram session blobs.
//!
//! Owns the AES-256-GCM [`Keyring`]: parsing key material from configuration,
//! sealing plaintext under the active key with a fresh random nonce, opening
//! blobs sealed under any key still in the ring, and telling callers when a
//! blob should be re-encrypted after a key rotation. Also owns the
//! associated-data encoding that binds a ciphertext to its database row
//! ([`session_aad`]).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Length in bytes of an AES-256 key.
pub const KEY_LEN: usize = 32;

/// Length in bytes of an AES-GCM nonce (96 bits).
pub const NONCE_LEN: usize = 12;

/// Length in bytes of the GCM authentication tag appended to each ciphertext.
pub const TAG_LEN: usize = 16;

/// Maximum length of a [`KeyId`], in characters.
pub const KEY_ID_MAX_LEN: usize = 32;

/// Domain-separation label at the start of [`session_aad`].
const SESSION_AAD_LABEL: &[u8] = b"tgvisor.session.v1";

/// The name of a key in a keyring, stored next to every ciphertext so the
/// right key can be found at decryption time (for example `"k1"`).
///
/// Valid ids are 1 to 32 characters from `[A-Za-z0-9_-]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

/// A string was rejected as a [`KeyId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key id must be 1 to 32 characters from [A-Za-z0-9_-]")]
pub struct InvalidKeyId;

impl KeyId {
    /// Validates `s` as a key id.
    pub fn parse(s: &str) -> Result<Self, InvalidKeyId> {
        let valid_len = (1..=KEY_ID_MAX_LEN).contains(&s.len());
        let valid_chars = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid_len && valid_chars {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidKeyId)
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl FromStr for KeyId {
    type Err = InvalidKeyId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for KeyId {
    type Error = InvalidKeyId;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<KeyId> for String {
    fn from(id: KeyId) -> Self {
        id.0
    }
}

impl AsRef<str> for KeyId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A keyring could not be built from configuration.
///
/// Messages name the key id at most, never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// The active key id has no key in the list.
    #[error("active key `{0}` is not in the keyring")]
    ActiveKeyMissing(KeyId),
    /// A key is not valid standard base64.
    #[error("key `{0}` is not valid base64")]
    InvalidBase64(KeyId),
    /// A key does not decode to exactly 32 bytes.
    #[error("key `{key_id}` decodes to {actual} bytes, expected 32")]
    WrongKeyLength {
        /// Which key.
        key_id: KeyId,
        /// How many bytes it decoded to.
        actual: usize,
    },
    /// The same key id appears twice.
    #[error("key id `{0}` appears more than once")]
    DuplicateKeyId(KeyId),
}

/// A sealed blob could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The blob names a key that is not in the keyring (removed too early?).
    #[error("no key `{0}` in the keyring")]
    UnknownKey(KeyId),
    /// Authentication failed: wrong key, wrong associated data, or tampered
    /// nonce/ciphertext. Deliberately carries no detail.
    #[error("decryption failed")]
    Decrypt,
}

/// The output of [`Keyring::seal`]: everything needed, together with the
/// associated data, to decrypt. Stored as the `key_id`, `nonce` and
/// `ciphertext` columns of a session row.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Which key sealed this blob.
    pub key_id: KeyId,
    /// The random 96-bit nonce used for this blob only.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the 16-byte GCM tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// AES-256-GCM keys by id, one of which is active for new encryptions.
///
/// Old keys stay in the ring after a rotation so existing blobs still open;
/// [`Keyring::needs_rewrap`] finds the blobs to re-encrypt before an old key
/// can be removed. `Debug` lists key ids only.
pub struct Keyring {
    /// Id of the key used by [`Keyring::seal`].
    active: KeyId,
    /// Initialized ciphers by key id; they zeroize their key schedule on drop.
    ciphers: HashMap<KeyId, Aes256Gcm>,
}

impl Keyring {
    /// Builds a keyring from `(id, base64 key)` pairs; `active` must be one
    /// of the ids.
    ///
    /// Each key is standard base64 (surrounding whitespace ignored) and must
    /// decode to exactly 32 bytes. Decoded bytes are zeroized after use.
    pub fn new(active: KeyId, keys: Vec<(KeyId, SecretString)>) -> Result<Self, KeyringError> {
        let mut ciphers = HashMap::with_capacity(keys.len());
        for (key_id, encoded) in keys {
            if ciphers.contains_key(&key_id) {
                return Err(KeyringError::DuplicateKeyId(key_id));
            }
            let bytes = match BASE64.decode(encoded.expose_secret().trim()) {
                Ok(bytes) => Zeroizing::new(bytes),
                Err(_) => return Err(KeyringError::InvalidBase64(key_id)),
            };
            if bytes.len() != KEY_LEN {
                return Err(KeyringError::WrongKeyLength {
                    key_id,
                    actual: bytes.len(),
                });
            }
            let cipher = match Aes256Gcm::new_from_slice(&bytes) {
                Ok(cipher) => cipher,
                Err(_) => {
                    return Err(KeyringError::WrongKeyLength {
                        key_id,
                        actual: bytes.len(),
                    });
                }
            };
            ciphers.insert(key_id, cipher);
        }
        if !ciphers.contains_key(&active) {
            return Err(KeyringError::ActiveKeyMissing(active));
        }
        Ok(Self { active, ciphers })
    }

    /// Generates a fresh random key, base64-encoded, for development secrets
    /// and for the key-rotation command.
    ///
    /// # Panics
    /// If the operating system's random number generator fails.
    pub fn generate_key() -> SecretString {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(key.as_mut_slice());
        SecretString::from(BASE64.encode(key.as_slice()))
    }

    /// Id of the key used for new encryptions.
    pub fn active_id(&self) -> &KeyId {
        &self.active
    }

    /// Ids of all keys in the ring, sorted.
    pub fn key_ids(&self) -> Vec<&KeyId> {
        let mut ids: Vec<&KeyId> = self.ciphers.keys().collect();
        ids.sort();
        ids
    }

    /// Encrypts `plaintext` under the active key with a fresh random nonce,
    /// authenticating `aad` (use [`session_aad`] for session rows).
    ///
    /// # Panics
    /// If the operating system's random number generator fails, or if
    /// `plaintext` exceeds AES-GCM's limit of about 64 GiB.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        // Capacity for the tag up front: a reallocation would leave a copy
        // of the plaintext behind in freed memory.
        let mut buffer = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buffer.extend_from_slice(plaintext);
        #[allow(clippy::expect_used)]
        // unwrap: `new` guarantees the active id has a cipher and keys are never removed.
        let cipher = self.ciphers.get(&self.active).expect("active key present");
        #[allow(clippy::expect_used)]
        // unwrap: AES-GCM only fails for inputs over ~64 GiB, far beyond any session blob,
        // and `Vec` buffers never run out of capacity.
        cipher
            .encrypt_in_place(&Nonce::from(nonce), aad, &mut buffer)
            .expect("AES-GCM encryption of an in-range input");
        Sealed {
            key_id: self.active.clone(),
            nonce,
            ciphertext: buffer,
        }
    }

    /// Decrypts and authenticates a blob sealed by any key in the ring.
    ///
    /// `aad` must be exactly what was given to [`Keyring::seal`]. The
    /// plaintext is zeroized when the returned buffer is dropped.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let cipher = self
            .ciphers
            .get(&sealed.key_id)
            .ok_or_else(|| CryptoError::UnknownKey(sealed.key_id.clone()))?;
        let mut buffer = Zeroizing::new(sealed.ciphertext.clone());
        cipher
            .decrypt_in_place(&Nonce::from(sealed.nonce), aad, &mut *buffer)
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(buffer)
    }

    /// True when `sealed` was not made with the active key and should be
    /// re-encrypted (open, then seal) during a rotation.
    pub fn needs_rewrap(&self, sealed: &Sealed) -> bool {
        sealed.key_id != self.active
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

/// Associated data binding a session blob to its row: the label
/// `tgvisor.session.v1` followed by the big-endian session id and account id.
///
/// Every field has a fixed width, so no two `(session_id, account_id)` pairs
/// share an encoding, and the label keeps these bytes distinct from any other
/// use of the same keys.
pub fn session_aad(session_id: i64, account_id: i64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SESSION_AAD_LABEL.len() + 16);
    aad.extend_from_slice(SESSION_AAD_LABEL);
    aad.extend_from_slice(&session_id.to_be_bytes());
    aad.extend_from_slice(&account_id.to_be_bytes());
    aad
}

/// Fills `buf` from the operating system's random number generator.
fn fill_random(buf: &mut [u8]) {
    #[allow(clippy::expect_used)]
    // unwrap: the OS RNG (getrandom(2) on Linux) does not fail once the system has booted;
    // carrying on without randomness would reuse nonces, so panicking is the safe choice.
    getrandom::fill(buf).expect("operating system random number generator");
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const SESSION_BLOB: &[u8] = b"dc=2;auth_key=0123456789abcdef0123456789abcdef";

    fn id(s: &str) -> KeyId {
        KeyId::parse(s).unwrap()
    }

    fn ring(active: &str, keys: &[(&str, &SecretString)]) -> Keyring {
        let keys = keys.iter().map(|(k, v)| (id(k), (*v).clone())).collect();
        Keyring::new(id(active), keys).unwrap()
    }

    fn single() -> (Keyring, SecretString) {
        let key = Keyring::generate_key();
        (ring("k1", &[("k1", &key)]), key)
    }

    #[test]
    fn sealed_blob_opens_to_the_same_plaintext() {
        let (ring, _) = single();
        let aad = session_aad(7, 42);
        let sealed = ring.seal(SESSION_BLOB, &aad);
        assert_eq!(sealed.key_id, id("k1"));
        assert_eq!(sealed.ciphertext.len(), SESSION_BLOB.len() + TAG_LEN);
        let opened = ring.open(&sealed, &aad).unwrap();
        assert_eq!(opened.as_slice(), SESSION_BLOB);
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let (ring, _) = single();
        let sealed = ring.seal(b"", b"");
        assert_eq!(ring.open(&sealed, b"").unwrap().as_slice(), b"");
    }

    #[test]
    fn ciphertext_does_not_contain_the_plaintext() {
        let (ring, _) = single();
        let sealed = ring.seal(SESSION_BLOB, &session_aad(1, 1));
        let needle = &SESSION_BLOB[..16];
        assert!(!sealed.ciphertext.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn another_rows_aad_fails_to_open() {
        let (ring, _) = single();
        let sealed = ring.seal(SESSION_BLOB, &session_aad(7, 42));
        assert_eq!(
            ring.open(&sealed, &session_aad(8, 42)),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(
            ring.open(&sealed, &session_aad(7, 43)),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(ring.open(&sealed, b""), Err(CryptoError::Decrypt));
    }

    #[test]
    fn tampered_ciphertext_tag_or_nonce_fails_to_open() {
        let (ring, _) = single();
        let aad = session_aad(1, 2);
        let sealed = ring.seal(SESSION_BLOB, &aad);

        let mut body = sealed.clone();
        body.ciphertext[0] ^= 0x01;
        assert_eq!(ring.open(&body, &aad), Err(CryptoError::Decrypt));

        let mut tag = sealed.clone();
        let last = tag.ciphertext.len() - 1;
        tag.ciphertext[last] ^= 0x80;
        assert_eq!(ring.open(&tag, &aad), Err(CryptoError::Decrypt));

        let mut nonce = sealed.clone();
        nonce.nonce[0] ^= 0x01;
        assert_eq!(ring.open(&nonce, &aad), Err(CryptoError::Decrypt));

        let mut truncated = sealed;
        truncated.ciphertext.truncate(TAG_LEN - 1);
        assert_eq!(ring.open(&truncated, &aad), Err(CryptoError::Decrypt));
    }

    #[test]
    fn a_different_key_under_the_same_id_fails_to_open() {
        let (ring_a, _) = single();
        let (ring_b, _) = single();
        let sealed = ring_a.seal(SESSION_BLOB, b"aad");
        assert_eq!(ring_b.open(&sealed, b"aad"), Err(CryptoError::Decrypt));
    }

    #[test]
    fn old_key_still_opens_after_rotation_and_needs_rewrap() {
        let k1 = Keyring::generate_key();
        let k2 = Keyring::generate_key();
        let before = ring("k1", &[("k1", &k1)]);
        let aad = session_aad(3, 4);
        let old = before.seal(SESSION_BLOB, &aad);
        assert!(!before.needs_rewrap(&old));

        let after = ring("k2", &[("k1", &k1), ("k2", &k2)]);
        assert_eq!(after.active_id(), &id("k2"));
        assert!(after.needs_rewrap(&old));
        let plaintext = after.open(&old, &aad).unwrap();
        assert_eq!(plaintext.as_slice(), SESSION_BLOB);

        let rewrapped = after.seal(&plaintext, &aad);
        assert_eq!(rewrapped.key_id, id("k2"));
        assert!(!after.needs_rewrap(&rewrapped));
        assert_eq!(
            after.open(&rewrapped, &aad).unwrap().as_slice(),
            SESSION_BLOB
        );
    }

    #[test]
    fn unknown_key_id_is_a_clear_error() {
        let (ring_k1, _) = single();
        let ring_k9 = ring("k9", &[("k9", &Keyring::generate_key())]);
        let sealed = ring_k9.seal(SESSION_BLOB, b"");
        let err = ring_k1.open(&sealed, b"").unwrap_err();
        assert_eq!(err, CryptoError::UnknownKey(id("k9")));
        assert_eq!(err.to_string(), "no key `k9` in the keyring");
    }

    #[test]
    fn two_seals_of_the_same_plaintext_differ() {
        let (ring, _) = single();
        let a = ring.seal(SESSION_BLOB, b"aad");
        let b = ring.seal(SESSION_BLOB, b"aad");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn debug_output_shows_ids_but_no_key_material() {
        let (ring, key) = single();
        let debug = format!("{ring:?}");
        assert!(debug.contains("k1"));
        assert!(!debug.contains(key.expose_secret()));
        let raw = BASE64.decode(key.expose_secret()).unwrap();
        assert!(!debug.contains(&format!("{:?}", &raw[..4])));
        let sealed_debug = format!("{:?}", ring.seal(SESSION_BLOB, b""));
        assert!(sealed_debug.contains("ciphertext_len"));
    }

    #[test]
    fn generated_keys_are_32_random_bytes() {
        let a = Keyring::generate_key();
        let b = Keyring::generate_key();
        assert_eq!(BASE64.decode(a.expose_secret()).unwrap().len(), KEY_LEN);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn missing_active_key_is_rejected() {
        let err = Keyring::new(id("k2"), vec![(id("k1"), Keyring::generate_key())]).unwrap_err();
        assert_eq!(err, KeyringError::ActiveKeyMissing(id("k2")));
        let err = Keyring::new(id("k1"), Vec::new()).unwrap_err();
        assert_eq!(err, KeyringError::ActiveKeyMissing(id("k1")));
    }

    #[test]
    fn bad_base64_is_rejected_without_echoing_it() {
        let secret = "not base64 at all!!";
        let err = Keyring::new(id("k1"), vec![(id("k1"), SecretString::from(secret))]).unwrap_err();
        assert_eq!(err, KeyringError::InvalidBase64(id("k1")));
        assert!(!err.to_string().contains(secret));
    }

    #[test]
    fn keys_of_the_wrong_length_are_rejected() {
        for len in [0, 16, 31, 33, 64] {
            let key = SecretString::from(BASE64.encode(vec![7u8; len]));
            let err = Keyring::new(id("k1"), vec![(id("k1"), key)]).unwrap_err();
            assert_eq!(
                err,
                KeyringError::WrongKeyLength {
                    key_id: id("k1"),
                    actual: len
                }
            );
        }
    }

    #[test]
    fn surrounding_whitespace_in_a_key_is_ignored() {
        let key = Keyring::generate_key();
        let padded = SecretString::from(format!("  {}\n", key.expose_secret()));
        assert!(Keyring::new(id("k1"), vec![(id("k1"), padded)]).is_ok());
    }

    #[test]
    fn duplicate_key_ids_are_rejected() {
        let err = Keyring::new(
            id("k1"),
            vec![
                (id("k1"), Keyring::generate_key()),
                (id("k1"), Keyring::generate_key()),
            ],
        )
        .unwrap_err();
        assert_eq!(err, KeyringError::DuplicateKeyId(id("k1")));
    }

    #[test]
    fn key_ids_are_validated() {
        for ok in ["k1", "a", "K_2-x", &"z".repeat(32)] {
            assert_eq!(KeyId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", " k1", "k1 ", "k.1", "k/1", "ключ", &"z".repeat(33)] {
            assert_eq!(KeyId::parse(bad), Err(InvalidKeyId), "{bad:?}");
        }
    }

    #[test]
    fn key_ids_round_trip_through_serde() {
        let json = serde_json::to_string(&id("k7")).unwrap();
        assert_eq!(json, "\"k7\"");
        assert_eq!(serde_json::from_str::<KeyId>(&json).unwrap(), id("k7"));
        assert!(serde_json::from_str::<KeyId>("\"bad id\"").is_err());
    }

    #[test]
    fn session_aad_is_labelled_fixed_width_and_distinct() {
        let aad = session_aad(1, 2);
        assert_eq!(aad.len(), SESSION_AAD_LABEL.len() + 16);
        assert!(aad.starts_with(b"tgvisor.session.v1"));
        assert_eq!(&aad[aad.len() - 16..aad.len() - 8], &1i64.to_be_bytes());
        assert_eq!(&aad[aad.len() - 8..], &2i64.to_be_bytes());
        assert_ne!(session_aad(1, 2), session_aad(2, 1));
        assert_ne!(session_aad(-1, 0), session_aad(0, -1));
    }
}
