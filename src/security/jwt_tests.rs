//! Tests of the JWT keyring: issuing, verifying, rotation and every refusal.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;

const NOW: i64 = 1_750_000_000;
const DAY: i64 = 24 * 60 * 60;

fn secret() -> SecretString {
    super::super::crypto::Keyring::generate_key()
}

fn keys_with(iss: &str, aud: &str, active: &str, keys: &[(&str, &SecretString)]) -> JwtKeys {
    let keys = keys
        .iter()
        .map(|(k, s)| ((*k).to_owned(), (*s).clone()))
        .collect();
    JwtKeys::new(iss, aud, DEFAULT_TTL, active, keys).unwrap()
}

fn keys(active: &str, keys: &[(&str, &SecretString)]) -> JwtKeys {
    keys_with("tgvisor", "tgvisor-api", active, keys)
}

fn parts(token: &str) -> (String, String, String) {
    let v: Vec<&str> = token.split('.').collect();
    assert_eq!(v.len(), 3);
    (v[0].to_owned(), v[1].to_owned(), v[2].to_owned())
}

fn header_json(token: &str) -> serde_json::Value {
    serde_json::from_slice(&B64URL.decode(parts(token).0).unwrap()).unwrap()
}

#[test]
fn issued_token_verifies_with_the_same_claims() {
    let k1 = secret();
    let jwt = keys("k1", &[("k1", &k1)]);
    let (token, issued) = jwt.issue(42, Role::Admin, 3, NOW).unwrap();
    assert_eq!(issued.sub, "42");
    assert_eq!((issued.iat, issued.exp), (NOW, NOW + DAY));
    assert_eq!(issued.jti.len(), 32);
    let verified = jwt.verify(&token, NOW + 60).unwrap();
    assert_eq!(verified, issued);
    assert_eq!(verified.user_id(), Some(42));
    assert_eq!(verified.role, Role::Admin);
    assert_eq!(verified.ver, 3);
    assert_eq!(header_json(&token)["kid"], "k1");
    assert_eq!(header_json(&token)["alg"], "HS256");
}

#[test]
fn role_serializes_lowercase() {
    assert_eq!(serde_json::to_string(&Role::Admin).unwrap(), "\"admin\"");
    assert_eq!(serde_json::to_string(&Role::User).unwrap(), "\"user\"");
}

#[test]
fn token_ids_are_unique() {
    let k1 = secret();
    let jwt = keys("k1", &[("k1", &k1)]);
    let (a, ca) = jwt.issue(1, Role::User, 0, NOW).unwrap();
    let (b, cb) = jwt.issue(1, Role::User, 0, NOW).unwrap();
    assert_ne!(ca.jti, cb.jti);
    assert_ne!(a, b);
}

#[test]
fn expired_token_is_refused_after_the_skew_allowance() {
    let k1 = secret();
    let jwt = keys("k1", &[("k1", &k1)]);
    let (token, claims) = jwt.issue(1, Role::User, 0, NOW).unwrap();
    assert!(jwt.verify(&token, claims.exp - 1).is_ok());
    assert!(jwt.verify(&token, claims.exp + CLOCK_SKEW_SECS - 1).is_ok());
    let err = jwt
        .verify(&token, claims.exp + CLOCK_SKEW_SECS)
        .unwrap_err();
    assert_eq!(err, JwtError::Expired);
    assert_eq!(err.code(), "token_expired");
    assert_eq!(jwt.verify(&token, NOW + 2 * DAY), Err(JwtError::Expired));
}

#[test]
fn token_from_the_future_is_refused() {
    let k1 = secret();
    let jwt = keys("k1", &[("k1", &k1)]);
    let (token, _) = jwt.issue(1, Role::User, 0, NOW).unwrap();
    assert!(jwt.verify(&token, NOW - CLOCK_SKEW_SECS).is_ok());
    assert_eq!(
        jwt.verify(&token, NOW - CLOCK_SKEW_SECS - 1),
        Err(JwtError::Malformed)
    );
}

#[test]
fn wrong_audience_is_refused() {
    let k1 = secret();
    let other = keys_with("tgvisor", "someone-else", "k1", &[("k1", &k1)]);
    let (token, _) = other.issue(1, Role::User, 0, NOW).unwrap();
    let err = keys("k1", &[("k1", &k1)]).verify(&token, NOW).unwrap_err();
    assert_eq!(err, JwtError::InvalidAudience);
    assert_eq!(err.code(), "token_invalid_audience");
}

#[test]
fn wrong_issuer_is_refused() {
    let k1 = secret();
    let other = keys_with("evil", "tgvisor-api", "k1", &[("k1", &k1)]);
    let (token, _) = other.issue(1, Role::User, 0, NOW).unwrap();
    let err = keys("k1", &[("k1", &k1)]).verify(&token, NOW).unwrap_err();
    assert_eq!(err, JwtError::InvalidIssuer);
    assert_eq!(err.code(), "token_invalid_issuer");
}

#[test]
fn token_signed_by_a_foreign_key_is_refused() {
    let (mine, theirs) = (secret(), secret());
    let (token, _) = keys("k1", &[("k1", &theirs)])
        .issue(1, Role::Admin, 0, NOW)
        .unwrap();
    let err = keys("k1", &[("k1", &mine)])
        .verify(&token, NOW)
        .unwrap_err();
    assert_eq!(err, JwtError::BadSignature);
    assert_eq!(err.code(), "token_bad_signature");

    let (token, _) = keys("k9", &[("k9", &theirs)])
        .issue(1, Role::Admin, 0, NOW)
        .unwrap();
    let err = keys("k1", &[("k1", &mine)])
        .verify(&token, NOW)
        .unwrap_err();
    assert_eq!(err, JwtError::UnknownKey);
    assert_eq!(err.code(), "token_unknown_key");
}

#[test]
fn rotation_keeps_old_tokens_valid_until_the_old_key_is_removed() {
    let (k1, k2) = (secret(), secret());
    let (old_token, _) = keys("k1", &[("k1", &k1)])
        .issue(7, Role::User, 0, NOW)
        .unwrap();

    let rotated = keys("k2", &[("k1", &k1), ("k2", &k2)]);
    assert_eq!(rotated.active_kid().as_str(), "k2");
    assert_eq!(rotated.verify(&old_token, NOW).unwrap().sub, "7");
    let (new_token, _) = rotated.issue(7, Role::User, 0, NOW).unwrap();
    assert_eq!(header_json(&new_token)["kid"], "k2");
    assert!(rotated.verify(&new_token, NOW).is_ok());

    let pruned = keys("k2", &[("k2", &k2)]);
    assert_eq!(pruned.verify(&old_token, NOW), Err(JwtError::UnknownKey));
    assert!(pruned.verify(&new_token, NOW).is_ok());
}

#[test]
fn missing_kid_is_unknown_key() {
    let k1 = secret();
    let jwt = keys("k1", &[("k1", &k1)]);
    let (_, claims) = jwt.issue(1, Role::User, 0, NOW).unwrap();
    let key = EncodingKey::from_secret(&BASE64.decode(k1.expose_secret()).unwrap());
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    assert_eq!(jwt.verify(&token, NOW), Err(JwtError::UnknownKey));
}

#[test]
fn alg_none_and_other_algorithms_are_refused() {
    let k1 = secret();
    let jwt = keys("k1", &[("k1", &k1)]);
    let (token, claims) = jwt.issue(1, Role::User, 0, NOW).unwrap();
    let (_, payload, _) = parts(&token);

    for alg in ["none", "None", "HS512", "RS256"] {
        let header = B64URL.encode(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"k1"}}"#));
        for sig in ["", "AAAA"] {
            let forged = format!("{header}.{payload}.{sig}");
            assert_eq!(jwt.verify(&forged, NOW), Err(JwtError::Malformed), "{alg}");
        }
    }

    // A genuine HS512 signature with the right key is still refused.
    let key = EncodingKey::from_secret(&BASE64.decode(k1.expose_secret()).unwrap());
    let mut header = Header::new(Algorithm::HS512);
    header.kid = Some("k1".into());
    let hs512 = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert_eq!(jwt.verify(&hs512, NOW), Err(JwtError::Malformed));
}

#[test]
fn tampered_payload_is_refused() {
    let k1 = secret();
    let jwt = keys("k1", &[("k1", &k1)]);
    let (token, mut claims) = jwt.issue(1, Role::User, 0, NOW).unwrap();
    let (header, _, sig) = parts(&token);
    claims.role = Role::Admin;
    let payload = B64URL.encode(serde_json::to_vec(&claims).unwrap());
    let forged = format!("{header}.{payload}.{sig}");
    assert_eq!(jwt.verify(&forged, NOW), Err(JwtError::BadSignature));

    // Change the first signature character: it carries six signature bits
    // (the last one partly carries padding bits, which base64 rejects).
    let first = if sig.starts_with('A') { 'B' } else { 'A' };
    let bad_sig = format!("{header}.{}.{first}{}", parts(&token).1, &sig[1..]);
    assert_eq!(jwt.verify(&bad_sig, NOW), Err(JwtError::BadSignature));
}

#[test]
fn garbage_is_malformed() {
    let k1 = secret();
    let jwt = keys("k1", &[("k1", &k1)]);
    for junk in ["", "abc", "a.b", "a.b.c", "...", "Bearer x.y.z"] {
        assert_eq!(jwt.verify(junk, NOW), Err(JwtError::Malformed), "{junk:?}");
    }
}

#[test]
fn validly_signed_token_with_a_non_numeric_sub_is_malformed() {
    let k1 = secret();
    let jwt = keys("k1", &[("k1", &k1)]);
    let (_, mut claims) = jwt.issue(1, Role::User, 0, NOW).unwrap();
    claims.sub = "alice".into();
    let key = EncodingKey::from_secret(&BASE64.decode(k1.expose_secret()).unwrap());
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert_eq!(jwt.verify(&token, NOW), Err(JwtError::Malformed));
}

#[test]
fn debug_does_not_print_secrets() {
    let (k1, k2) = (secret(), secret());
    let jwt = keys("k2", &[("k1", &k1), ("k2", &k2)]);
    let debug = format!("{jwt:?}");
    assert!(debug.contains("k1") && debug.contains("k2"));
    assert!(!debug.contains(k1.expose_secret()));
    assert!(!debug.contains(k2.expose_secret()));
}

#[test]
fn bad_configuration_is_rejected() {
    let k = secret();
    let new = |iss: &str, ttl: Duration, active: &str, keys: Vec<(String, SecretString)>| {
        JwtKeys::new(iss, "aud", ttl, active, keys).unwrap_err()
    };
    let one = || vec![("k1".to_owned(), k.clone())];
    assert_eq!(
        new("", DEFAULT_TTL, "k1", one()),
        JwtKeyError::EmptyIssuerOrAudience
    );
    assert_eq!(
        new("i", Duration::ZERO, "k1", one()),
        JwtKeyError::InvalidTtl
    );
    assert_eq!(
        new("i", DEFAULT_TTL, "k 1", one()),
        JwtKeyError::InvalidKeyId
    );
    let missing = new("i", DEFAULT_TTL, "k2", one());
    assert_eq!(
        missing.to_string(),
        "active JWT key `k2` is not in the keyring"
    );
    let dup = new("i", DEFAULT_TTL, "k1", [one(), one()].concat());
    assert!(matches!(dup, JwtKeyError::DuplicateKeyId(_)));
    let bad_b64 = SecretString::from("%%% not base64 %%%");
    let err = new("i", DEFAULT_TTL, "k1", vec![("k1".into(), bad_b64)]);
    assert!(matches!(err, JwtKeyError::InvalidBase64(_)));
    assert!(!err.to_string().contains("%%%"));
    let short = SecretString::from(BASE64.encode([1u8; 31]));
    let err = new("i", DEFAULT_TTL, "k1", vec![("k1".into(), short)]);
    assert!(matches!(err, JwtKeyError::KeyTooShort(_)));
    let long = SecretString::from(BASE64.encode([1u8; 64]));
    assert!(JwtKeys::new("i", "a", DEFAULT_TTL, "k1", vec![("k1".into(), long)]).is_ok());
}

#[test]
fn error_codes_are_distinct() {
    let all = [
        JwtError::Expired,
        JwtError::InvalidAudience,
        JwtError::InvalidIssuer,
        JwtError::UnknownKey,
        JwtError::Malformed,
        JwtError::BadSignature,
        JwtError::Signing,
    ];
    let codes: std::collections::HashSet<_> = all.iter().map(JwtError::code).collect();
    assert_eq!(codes.len(), all.len());
}
