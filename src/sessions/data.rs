//! The plaintext of a stored session: the home DC, the DCs known with their
//! addresses and auth keys, and room for what the Telegram backend keeps
//! (update state, peers). Serialized as JSON, then sealed by the store; the
//! JSON buffer is zeroed after use.
//!
//! `Debug` never prints auth keys.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use zeroize::Zeroizing;

/// Current format version of [`SessionData`].
pub const FORMAT_VERSION: u32 = 1;

/// An MTProto auth key: 256 bytes that let anyone act as the account.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey(Zeroizing<[u8; 256]>);

impl AuthKey {
    pub fn new(bytes: [u8; 256]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn expose(&self) -> &[u8; 256] {
        &self.0
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(..)")
    }
}

impl Serialize for AuthKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let encoded = Zeroizing::new(STANDARD.encode(self.0.as_slice()));
        s.serialize_str(&encoded)
    }
}

impl<'de> Deserialize<'de> for AuthKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let encoded = Zeroizing::new(String::deserialize(d)?);
        let bytes = Zeroizing::new(
            STANDARD
                .decode(encoded.as_bytes())
                .map_err(|_| serde::de::Error::custom("auth key is not base64"))?,
        );
        let mut key = [0u8; 256];
        if bytes.len() != key.len() {
            return Err(serde::de::Error::custom("auth key must be 256 bytes"));
        }
        key.copy_from_slice(&bytes);
        let key = AuthKey::new(key);
        Ok(key)
    }
}

/// One data centre as the session knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcEntry {
    pub id: i32,
    pub ipv4: Option<SocketAddrV4>,
    pub ipv6: Option<SocketAddrV6>,
    pub auth_key: Option<AuthKey>,
}

/// Everything a Telegram client needs to resume as the account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    pub version: u32,
    pub home_dc: i32,
    pub dcs: Vec<DcEntry>,
    /// The signed-in user, once known.
    #[serde(default)]
    pub user_id: Option<i64>,
    /// Backend-specific state (update state, peer cache), opaque here.
    #[serde(default)]
    pub backend_state: Option<serde_json::Value>,
}

/// A session string could not be imported. Messages never echo the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("unsupported session string version (expected a Telethon string starting with '1')")]
    UnsupportedVersion,
    #[error("the session string is not valid base64")]
    NotBase64,
    #[error("the session string has the wrong length for a Telethon session")]
    WrongLength,
    #[error("the session string names an invalid data centre or port")]
    InvalidDc,
}

impl ImportError {
    pub fn code(self) -> &'static str {
        match self {
            Self::UnsupportedVersion => "session_unsupported_version",
            Self::NotBase64 => "session_not_base64",
            Self::WrongLength => "session_wrong_length",
            Self::InvalidDc => "session_invalid_dc",
        }
    }
}

impl SessionData {
    /// A session with one DC and its key.
    pub fn single_dc(dc: DcEntry) -> Self {
        Self {
            version: FORMAT_VERSION,
            home_dc: dc.id,
            dcs: vec![dc],
            user_id: None,
            backend_state: None,
        }
    }

    /// Parses a Telethon `StringSession`: `'1'` followed by URL-safe base64
    /// of dc_id (1 byte) ‖ IPv4 (4) or IPv6 (16) ‖ port (2, big-endian) ‖
    /// auth key (256). Padding is optional; surrounding whitespace ignored.
    pub fn from_telethon_string(input: &str) -> Result<Self, ImportError> {
        let input = input.trim();
        let Some(body) = input.strip_prefix('1') else {
            return Err(ImportError::UnsupportedVersion);
        };
        let bytes = Zeroizing::new(
            URL_SAFE
                .decode(body)
                .or_else(|_| URL_SAFE_NO_PAD.decode(body))
                .map_err(|_| ImportError::NotBase64)?,
        );
        let ip_len = match bytes.len() {
            263 => 4,
            275 => 16,
            _ => return Err(ImportError::WrongLength),
        };
        let dc_id = i32::from(bytes[0]);
        let ip_bytes = &bytes[1..1 + ip_len];
        let port = u16::from_be_bytes([bytes[1 + ip_len], bytes[2 + ip_len]]);
        if dc_id == 0 || port == 0 {
            return Err(ImportError::InvalidDc);
        }
        let mut key = [0u8; 256];
        key.copy_from_slice(&bytes[3 + ip_len..]);
        let ip = if ip_len == 4 {
            IpAddr::V4(Ipv4Addr::new(
                ip_bytes[0],
                ip_bytes[1],
                ip_bytes[2],
                ip_bytes[3],
            ))
        } else {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(ip_bytes);
            IpAddr::V6(Ipv6Addr::from(octets))
        };
        let (ipv4, ipv6) = match SocketAddr::new(ip, port) {
            SocketAddr::V4(a) => (Some(a), None),
            SocketAddr::V6(a) => (None, Some(a)),
        };
        Ok(Self::single_dc(DcEntry {
            id: dc_id,
            ipv4,
            ipv6,
            auth_key: Some(AuthKey::new(key)),
        }))
    }

    /// The home DC as a Telethon `StringSession` (what
    /// [`SessionData::from_telethon_string`] reads); `None` without a home
    /// DC, an address or a key. The string carries the auth key: a secret.
    pub fn to_telethon_string(&self) -> Option<String> {
        let dc = self.dcs.iter().find(|d| d.id == self.home_dc)?;
        let mut raw = Zeroizing::new(vec![u8::try_from(dc.id).ok()?]);
        let port = match (dc.ipv4, dc.ipv6) {
            (Some(a), _) => {
                raw.extend_from_slice(&a.ip().octets());
                a.port()
            }
            (None, Some(a)) => {
                raw.extend_from_slice(&a.ip().octets());
                a.port()
            }
            (None, None) => return None,
        };
        raw.extend_from_slice(&port.to_be_bytes());
        raw.extend_from_slice(dc.auth_key.as_ref()?.expose());
        Some(format!("1{}", URL_SAFE.encode(&*raw)))
    }

    /// Serializes for sealing. The buffer is zeroed when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        // Measure first, then write into a buffer of the exact size: a
        // growing Vec would leave freed copies of the keys behind.
        let mut counter = ByteCounter(0);
        // unwrap: serializing plain structs with string keys cannot fail.
        #[allow(clippy::expect_used)]
        serde_json::to_writer(&mut counter, self).expect("session data serializes");
        let mut buf = Zeroizing::new(Vec::with_capacity(counter.0));
        #[allow(clippy::expect_used)]
        serde_json::to_writer(&mut *buf, self).expect("session data serializes");
        buf
    }

    /// Parses what [`SessionData::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Counts bytes written.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Telethon string built the way Telethon builds it.
    pub(crate) fn telethon_string(dc: u8, ip: &[u8], port: u16, key: &[u8; 256]) -> String {
        let mut raw = vec![dc];
        raw.extend_from_slice(ip);
        raw.extend_from_slice(&port.to_be_bytes());
        raw.extend_from_slice(key);
        format!("1{}", URL_SAFE.encode(raw))
    }

    fn key() -> [u8; 256] {
        let mut k = [0u8; 256];
        for (i, b) in k.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        k
    }

    #[test]
    fn imports_an_ipv4_telethon_string() {
        let s = telethon_string(2, &[149, 154, 167, 51], 443, &key());
        let data = SessionData::from_telethon_string(&s).unwrap();
        assert_eq!(data.home_dc, 2);
        let dc = &data.dcs[0];
        assert_eq!(dc.ipv4.unwrap().to_string(), "149.154.167.51:443");
        assert_eq!(dc.ipv6, None);
        assert_eq!(dc.auth_key.as_ref().unwrap().expose(), &key());
    }

    #[test]
    fn telethon_strings_round_trip() {
        let v4 = telethon_string(2, &[149, 154, 167, 51], 443, &key());
        let data = SessionData::from_telethon_string(&v4).unwrap();
        assert_eq!(data.to_telethon_string().as_deref(), Some(v4.as_str()));
        let ip: [u8; 16] = "2001:67c:4e8:f002::a".parse::<Ipv6Addr>().unwrap().octets();
        let v6 = telethon_string(4, &ip, 80, &key());
        let data = SessionData::from_telethon_string(&v6).unwrap();
        assert_eq!(data.to_telethon_string().as_deref(), Some(v6.as_str()));
    }

    #[test]
    fn imports_an_ipv6_string_without_padding() {
        let ip: [u8; 16] = "2001:67c:4e8:f002::a".parse::<Ipv6Addr>().unwrap().octets();
        let s = telethon_string(4, &ip, 80, &key());
        let data = SessionData::from_telethon_string(s.trim_end_matches('=')).unwrap();
        assert_eq!(
            data.dcs[0].ipv6.unwrap().to_string(),
            "[2001:67c:4e8:f002::a]:80"
        );
    }

    #[test]
    fn rejects_bad_strings_with_distinct_codes() {
        let good = telethon_string(2, &[1, 2, 3, 4], 443, &key());
        let cases = [
            (format!("2{}", &good[1..]), ImportError::UnsupportedVersion),
            ("1***".to_owned(), ImportError::NotBase64),
            (good[..good.len() - 8].to_owned(), ImportError::WrongLength),
            (
                telethon_string(0, &[1, 2, 3, 4], 443, &key()),
                ImportError::InvalidDc,
            ),
            (
                telethon_string(2, &[1, 2, 3, 4], 0, &key()),
                ImportError::InvalidDc,
            ),
            (String::new(), ImportError::UnsupportedVersion),
        ];
        for (input, expected) in cases {
            assert_eq!(
                SessionData::from_telethon_string(&input),
                Err(expected),
                "{input}"
            );
        }
    }

    #[test]
    fn round_trips_through_bytes_and_debug_hides_the_key() {
        let s = telethon_string(2, &[1, 2, 3, 4], 443, &key());
        let mut data = SessionData::from_telethon_string(&s).unwrap();
        data.user_id = Some(777);
        let bytes = data.to_bytes();
        assert_eq!(
            bytes.capacity(),
            bytes.len(),
            "no reallocation left copies behind"
        );
        assert_eq!(SessionData::from_bytes(&bytes).unwrap(), data);
        let debug = format!("{data:?}");
        assert!(debug.contains("AuthKey(..)"), "{debug}");
        assert!(!debug.contains(&STANDARD.encode(key())[..20]));
    }
}
