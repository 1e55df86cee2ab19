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
#[path = "crypto_tests.rs"]
mod tests;
