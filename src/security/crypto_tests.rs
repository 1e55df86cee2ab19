//! Tests of the session-blob encryption: round trips, key rotation and tampering.

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
