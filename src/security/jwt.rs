//! Access tokens for the HTTP API and the WebSocket `auth` frame.
//!
//! Owns the JWT format ([`Claims`]), the HS256 signing keyring with key ids
//! (`kid` header) so keys can be rotated without logging everyone out, and
//! token verification against an injected clock. Checking `ver` against the
//! user's current token version (for logout-all) is the caller's job.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::crypto::KeyId;

/// The only accepted signature algorithm.
const ALGORITHM: Algorithm = Algorithm::HS256;

/// Allowed clock skew, in seconds, for `exp` and `iat`.
pub const CLOCK_SKEW_SECS: i64 = 30;

/// Suggested token lifetime.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Minimum HMAC key length in bytes (after base64 decoding).
pub const MIN_KEY_LEN: usize = 32;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ordinary user: their own accounts only.
    User,
    /// An operator: everything.
    Admin,
}

/// The payload of a tgvisor access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id, as a decimal string (JWT `sub`).
    pub sub: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Issuer; must equal the configured issuer.
    pub iss: String,
    /// Audience; must equal the configured audience.
    pub aud: String,
    /// The user's token version at issue time; bumping it revokes all tokens.
    pub ver: i64,
    /// Role at issue time.
    pub role: Role,
    /// Random token id, for logs and future deny-lists.
    pub jti: String,
}

impl Claims {
    /// The user id in `sub`, if it is a decimal `i64`.
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

/// A token was refused or could not be issued.
///
/// Display texts and [`JwtError::code`] values are stable and safe to send
/// to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// `exp` is in the past (beyond the allowed clock skew).
    #[error("token has expired")]
    Expired,
    /// `aud` is not this service's audience.
    #[error("token audience is not accepted")]
    InvalidAudience,
    /// `iss` is not this service's issuer.
    #[error("token issuer is not accepted")]
    InvalidIssuer,
    /// The `kid` header is missing or names no key in the ring.
    #[error("token signing key is unknown")]
    UnknownKey,
    /// Not a well-formed tgvisor token: bad encoding, missing or mistyped
    /// claims, an algorithm other than HS256, or `iat` in the future.
    #[error("token is malformed")]
    Malformed,
    /// The signature does not match the payload.
    #[error("token signature is invalid")]
    BadSignature,
    /// Issuing failed (randomness or encoding); never returned by `verify`.
    #[error("token could not be issued")]
    Signing,
}

impl JwtError {
    /// Stable machine-readable code for API responses and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Expired => "token_expired",
            Self::InvalidAudience => "token_invalid_audience",
            Self::InvalidIssuer => "token_invalid_issuer",
            Self::UnknownKey => "token_unknown_key",
            Self::Malformed => "token_malformed",
            Self::BadSignature => "token_bad_signature",
            Self::Signing => "token_signing_failed",
        }
    }
}

/// The JWT keyring could not be built from configuration.
///
/// Messages name key ids at most, never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtKeyError {
    /// A key id is not 1 to 32 characters from `[A-Za-z0-9_-]`.
    #[error("JWT key id must be 1 to 32 characters from [A-Za-z0-9_-]")]
    InvalidKeyId,
    /// The active key id has no key in the list.
    #[error("active JWT key `{0}` is not in the keyring")]
    ActiveKeyMissing(KeyId),
    /// The same key id appears twice.
    #[error("JWT key id `{0}` appears more than once")]
    DuplicateKeyId(KeyId),
    /// A key is not valid standard base64.
    #[error("JWT key `{0}` is not valid base64")]
    InvalidBase64(KeyId),
    /// A key decodes to fewer than [`MIN_KEY_LEN`] bytes.
    #[error("JWT key `{0}` is shorter than 32 bytes")]
    KeyTooShort(KeyId),
    /// Issuer or audience is empty.
    #[error("JWT issuer and audience must not be empty")]
    EmptyIssuerOrAudience,
    /// The lifetime is zero or too large.
    #[error("JWT lifetime must be between 1 second and 1 year")]
    InvalidTtl,
}

/// One HMAC secret in both forms jsonwebtoken wants (both zeroize on drop).
struct SigningKey {
    /// For `issue`.
    encoding: EncodingKey,
    /// For `verify`.
    decoding: DecodingKey,
}

/// Issues and verifies HS256 tokens with a rotatable set of keys.
///
/// New tokens are signed with the active key and carry its id in the `kid`
/// header; verification picks the key named by `kid`, so tokens signed with
/// an older key keep working until that key is removed. `Debug` lists key
/// ids only.
pub struct JwtKeys {
    /// Expected and issued `iss`.
    issuer: String,
    /// Expected and issued `aud`.
    audience: String,
    /// Token lifetime in seconds.
    ttl_secs: i64,
    /// Key used by `issue`.
    active: KeyId,
    /// All keys by id.
    keys: HashMap<KeyId, SigningKey>,
    /// Signature, `iss` and `aud` checks; time is checked by hand.
    validation: Validation,
}

impl JwtKeys {
    /// Builds the keyring. Keys are standard base64 (surrounding whitespace
    /// ignored) and must decode to at least 32 bytes; `active_kid` must be
    /// one of them. Use [`DEFAULT_TTL`] unless configured otherwise.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        ttl: Duration,
        active_kid: &str,
        keys: Vec<(String, SecretString)>,
    ) -> Result<Self, JwtKeyError> {
        let (issuer, audience) = (issuer.into(), audience.into());
        if issuer.is_empty() || audience.is_empty() {
            return Err(JwtKeyError::EmptyIssuerOrAudience);
        }
        let ttl_secs = i64::try_from(ttl.as_secs()).map_err(|_| JwtKeyError::InvalidTtl)?;
        if !(1..=366 * 24 * 60 * 60).contains(&ttl_secs) {
            return Err(JwtKeyError::InvalidTtl);
        }
        let active = KeyId::parse(active_kid).map_err(|_| JwtKeyError::InvalidKeyId)?;

        let mut map = HashMap::with_capacity(keys.len());
        for (kid, secret) in keys {
            let kid = KeyId::parse(&kid).map_err(|_| JwtKeyError::InvalidKeyId)?;
            if map.contains_key(&kid) {
                return Err(JwtKeyError::DuplicateKeyId(kid));
            }
            let bytes = match BASE64.decode(secret.expose_secret().trim()) {
                Ok(bytes) => Zeroizing::new(bytes),
                Err(_) => return Err(JwtKeyError::InvalidBase64(kid)),
            };
            if bytes.len() < MIN_KEY_LEN {
                return Err(JwtKeyError::KeyTooShort(kid));
            }
            let key = SigningKey {
                encoding: EncodingKey::from_secret(&bytes),
                decoding: DecodingKey::from_secret(&bytes),
            };
            map.insert(kid, key);
        }
        if !map.contains_key(&active) {
            return Err(JwtKeyError::ActiveKeyMissing(active));
        }

        let mut validation = Validation::new(ALGORITHM);
        validation.validate_exp = false; // checked against the injected clock
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);

        Ok(Self {
            issuer,
            audience,
            ttl_secs,
            active,
            keys: map,
            validation,
        })
    }

    /// Id of the key used for new tokens.
    pub fn active_kid(&self) -> &KeyId {
        &self.active
    }

    /// Issues a token for `user_id` valid from `now` (Unix seconds) for the
    /// configured lifetime. Returns the compact token and its claims.
    pub fn issue(
        &self,
        user_id: i64,
        role: Role,
        token_version: i64,
        now: i64,
    ) -> Result<(String, Claims), JwtError> {
        let exp = now.checked_add(self.ttl_secs).ok_or(JwtError::Signing)?;
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(|_| JwtError::Signing)?;
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            ver: token_version,
            role,
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
        };
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.active.as_str().to_owned());
        let key = self.keys.get(&self.active).ok_or(JwtError::Signing)?;
        let token =
            jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|_| JwtError::Signing)?;
        Ok((token, claims))
    }

    /// Verifies a token at time `now` (Unix seconds) and returns its claims.
    ///
    /// Checks, in order: the header parses, `alg` is HS256 and no `crit`
    /// header is present; `kid` names a key in the ring; the signature; the
    /// claim types, `iss` and `aud`; `sub` is a user id; `exp` has not
    /// passed and `iat` is not in the future, each within
    /// [`CLOCK_SKEW_SECS`].
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if header.alg != ALGORITHM || header.crit.is_some() {
            return Err(JwtError::Malformed);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| KeyId::parse(kid).ok())
            .and_then(|kid| self.keys.get(&kid))
            .ok_or(JwtError::UnknownKey)?;

        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation)
            .map_err(|e| map_decode_error(e.kind()))?
            .claims;

        if claims.user_id().is_none() {
            return Err(JwtError::Malformed);
        }
        if now >= claims.exp.saturating_add(CLOCK_SKEW_SECS) {
            return Err(JwtError::Expired);
        }
        if claims.iat > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(JwtError::Malformed);
        }
        Ok(claims)
    }
}

/// Maps jsonwebtoken's errors onto the stable, detail-free [`JwtError`].
fn map_decode_error(kind: &ErrorKind) -> JwtError {
    match kind {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::InvalidIssuer => JwtError::InvalidIssuer,
        ErrorKind::InvalidAudience => JwtError::InvalidAudience,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        _ => JwtError::Malformed,
    }
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&KeyId> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("JwtKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl_secs", &self.ttl_secs)
            .field("active", &self.active)
            .field("kids", &kids)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "jwt_tests.rs"]
mod tests;
