//! The MTProto 2.0 envelope, server side: decrypting what the client sends
//! (x = 0) and encrypting what the server answers (x = 8).
//!
//! ```text
//! auth_key_id = sha1(K)[12..20]
//! msg_key     = sha256(K[88+x .. 88+x+32] ‖ plaintext ‖ padding)[8..24]
//! a = sha256(msg_key ‖ K[x .. x+36]);  b = sha256(K[40+x .. 40+x+36] ‖ msg_key)
//! aes_key = a[0..8] ‖ b[8..24] ‖ a[24..32];  aes_iv = b[0..8] ‖ a[8..24] ‖ b[24..32]
//! packet  = auth_key_id ‖ msg_key ‖ AES-256-IGE(plaintext ‖ padding)
//! ```

use grammers_crypto::aes::{ige_decrypt, ige_encrypt};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// An auth key and its id.
#[derive(Clone)]
pub(crate) struct Key {
    data: [u8; 256],
    id: [u8; 8],
}

impl Key {
    pub(crate) fn new(data: [u8; 256]) -> Self {
        Self {
            id: key_id(&data),
            data,
        }
    }

    #[cfg(test)]
    pub(crate) fn id(&self) -> [u8; 8] {
        self.id
    }
}

/// The low 8 bytes of the key's SHA-1.
pub(crate) fn key_id(data: &[u8; 256]) -> [u8; 8] {
    let hash = Sha1::digest(data);
    let mut id = [0u8; 8];
    id.copy_from_slice(&hash[12..20]);
    id
}

/// Why a packet could not be decrypted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CryptoError {
    /// Not `key id ‖ msg_key ‖ whole AES blocks`.
    BadLength,
    /// The packet names another key.
    WrongKey,
    /// The msg_key does not match the plaintext: tampered or wrong key.
    BadMsgKey,
}

impl std::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::BadLength => "bad packet length",
            Self::WrongKey => "packet for another auth key",
            Self::BadMsgKey => "msg_key mismatch",
        })
    }
}

fn msg_key(key: &Key, x: usize, padded: &[u8]) -> [u8; 16] {
    let mut hasher = Sha256::new();
    hasher.update(&key.data[88 + x..88 + x + 32]);
    hasher.update(padded);
    let large = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&large[8..24]);
    out
}

fn aes_key_iv(key: &Key, msg_key: &[u8; 16], x: usize) -> ([u8; 32], [u8; 32]) {
    let a = Sha256::new()
        .chain_update(msg_key)
        .chain_update(&key.data[x..x + 36])
        .finalize();
    let b = Sha256::new()
        .chain_update(&key.data[40 + x..40 + x + 36])
        .chain_update(msg_key)
        .finalize();
    let mut aes_key = [0u8; 32];
    aes_key[..8].copy_from_slice(&a[..8]);
    aes_key[8..24].copy_from_slice(&b[8..24]);
    aes_key[24..].copy_from_slice(&a[24..32]);
    let mut aes_iv = [0u8; 32];
    aes_iv[..8].copy_from_slice(&b[..8]);
    aes_iv[8..24].copy_from_slice(&a[8..24]);
    aes_iv[24..].copy_from_slice(&b[24..32]);
    (aes_key, aes_iv)
}

/// Decrypts a client packet (`auth_key_id ‖ msg_key ‖ ciphertext`); returns
/// the plaintext with its padding.
pub(crate) fn decrypt_from_client(key: &Key, packet: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if packet.len() < 24 + 16 || !(packet.len() - 24).is_multiple_of(16) {
        return Err(CryptoError::BadLength);
    }
    if packet[..8] != key.id {
        return Err(CryptoError::WrongKey);
    }
    let mut msg_key_in = [0u8; 16];
    msg_key_in.copy_from_slice(&packet[8..24]);
    let (aes_key, aes_iv) = aes_key_iv(key, &msg_key_in, 0);
    let mut plain = packet[24..].to_vec();
    ige_decrypt(&mut plain, &aes_key, &aes_iv);
    if msg_key(key, 0, &plain) != msg_key_in {
        return Err(CryptoError::BadMsgKey);
    }
    Ok(plain)
}

/// Encrypts a server message (`salt ‖ session_id ‖ msg_id ‖ seq_no ‖ len ‖
/// body`) into `auth_key_id ‖ msg_key ‖ ciphertext`.
pub(crate) fn encrypt_for_client(key: &Key, plaintext: &[u8]) -> Vec<u8> {
    // 12..1024 bytes of padding, up to a whole AES block (as grammers pads).
    let pad_len = 16 + (16 - plaintext.len() % 16);
    let mut padded = Vec::with_capacity(plaintext.len() + pad_len);
    padded.extend_from_slice(plaintext);
    let mut padding = [0u8; 32];
    if getrandom::fill(&mut padding).is_err() {
        // Padding only needs to be unpredictable against a real attacker;
        // a loopback test server can live with fixed bytes.
        padding = [0x5a; 32];
    }
    padded.extend_from_slice(&padding[..pad_len]);
    let msg_key_out = msg_key(key, 8, &padded);
    let (aes_key, aes_iv) = aes_key_iv(key, &msg_key_out, 8);
    ige_encrypt(&mut padded, &aes_key, &aes_iv);
    let mut packet = Vec::with_capacity(24 + padded.len());
    packet.extend_from_slice(&key.id);
    packet.extend_from_slice(&msg_key_out);
    packet.extend_from_slice(&padded);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammers_crypto::{AuthKey, DequeBuffer, decrypt_data_v2, encrypt_data_v2};

    fn key_bytes() -> [u8; 256] {
        let mut k = [0u8; 256];
        for (i, b) in k.iter_mut().enumerate() {
            *b = (i * 31 + 7) as u8;
        }
        k
    }

    /// What grammers' client would send.
    fn client_packet(plaintext: &[u8]) -> Vec<u8> {
        let mut buf = DequeBuffer::with_capacity(plaintext.len(), 32);
        buf.extend(plaintext.iter().copied());
        encrypt_data_v2(&mut buf, &AuthKey::from_bytes(key_bytes()));
        buf.as_ref().to_vec()
    }

    #[test]
    fn reads_what_grammers_encrypts_and_grammers_reads_what_we_encrypt() {
        let key = Key::new(key_bytes());
        let plaintext: Vec<u8> = (0..100u8).collect();
        assert_eq!(&client_packet(&plaintext)[..8], &key.id());

        let decrypted = decrypt_from_client(&key, &client_packet(&plaintext)).unwrap();
        assert_eq!(&decrypted[..plaintext.len()], &plaintext[..]);

        let mut packet = encrypt_for_client(&key, &plaintext);
        let back = decrypt_data_v2(&mut packet, &AuthKey::from_bytes(key_bytes())).unwrap();
        assert_eq!(&back[..plaintext.len()], &plaintext[..]);
    }

    #[test]
    fn refuses_tampered_packets() {
        let key = Key::new(key_bytes());
        let mut packet = client_packet(&[1, 2, 3, 4]);
        assert!(decrypt_from_client(&key, &packet).is_ok());
        assert_eq!(
            decrypt_from_client(&key, &packet[..packet.len() - 1]),
            Err(CryptoError::BadLength)
        );
        let last = packet.len() - 1;
        packet[last] ^= 1;
        assert_eq!(
            decrypt_from_client(&key, &packet),
            Err(CryptoError::BadMsgKey)
        );
        packet[0] ^= 1;
        assert_eq!(
            decrypt_from_client(&key, &packet),
            Err(CryptoError::WrongKey)
        );
    }
}
