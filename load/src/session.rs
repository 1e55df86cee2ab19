//! Sim accounts to import: test-DC phone numbers and Telethon
//! `StringSession`s with random auth keys (the development service's sim
//! backend adopts keys it never issued).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use rand::Rng;
use std::net::Ipv4Addr;

/// The DC address written into generated sessions (the sim never dials it).
pub const DC_IPV4: Ipv4Addr = Ipv4Addr::new(149, 154, 167, 51);
/// The DC port written into generated sessions.
pub const DC_PORT: u16 = 443;

/// A Telethon `StringSession`: `'1'` + URL-safe base64 (padded, as Telethon
/// writes it) of dc_id (1 byte) ‖ IPv4 (4) ‖ port (2, big-endian) ‖ auth key (256).
pub fn telethon_string(dc_id: u8, ip: Ipv4Addr, port: u16, auth_key: &[u8; 256]) -> String {
    let mut raw = Vec::with_capacity(1 + 4 + 2 + auth_key.len());
    raw.push(dc_id);
    raw.extend_from_slice(&ip.octets());
    raw.extend_from_slice(&port.to_be_bytes());
    raw.extend_from_slice(auth_key);
    format!("1{}", URL_SAFE.encode(raw))
}

/// A sim test-DC number `+99966XYYYY` (X = `dc`, 1..=3) and a session on
/// that DC with a fresh random auth key.
pub fn random_sim_account(dc: u8) -> (String, String) {
    let mut rng = rand::rng();
    let phone = sim_phone(dc, rng.random_range(0..10_000));
    let mut key = [0u8; 256];
    rng.fill(&mut key[..]);
    (phone, telethon_string(dc, DC_IPV4, DC_PORT, &key))
}

/// `+99966` + the DC digit + a 4-digit tail. A tail starting with 9 makes
/// the sim ask for a 2FA password at sign-in; imports do not sign in, so any
/// tail works here.
pub fn sim_phone(dc: u8, tail: u16) -> String {
    format!("+99966{dc}{:04}", tail % 10_000)
}

/// The DC (1..=3) for the `index`-th account: spread over the three test DCs.
pub fn dc_for(index: usize) -> u8 {
    match index % 3 {
        0 => 1,
        1 => 2,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tgvisor::sessions::SessionData;

    fn key(seed: u8) -> [u8; 256] {
        let mut k = [0u8; 256];
        for (i, b) in k.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(7).wrapping_add(seed);
        }
        k
    }

    #[test]
    fn the_service_parses_the_session_string_back_to_the_same_dc_address_and_key() {
        for dc in 1..=3u8 {
            let k = key(dc);
            let s = telethon_string(dc, DC_IPV4, DC_PORT, &k);
            let data = SessionData::from_telethon_string(&s).expect("the service accepts it");
            assert_eq!(data.home_dc, i32::from(dc));
            let entry = &data.dcs[0];
            assert_eq!(entry.id, i32::from(dc));
            let addr = entry.ipv4.expect("an IPv4 address");
            assert_eq!(*addr.ip(), DC_IPV4);
            assert_eq!(addr.port(), DC_PORT);
            assert_eq!(entry.auth_key.as_ref().expect("a key").expose(), &k);
        }
    }

    #[test]
    fn the_session_string_is_padded_url_safe_base64_like_telethons() {
        let s = telethon_string(2, DC_IPV4, DC_PORT, &[0xfb; 256]);
        assert!(s.starts_with('1'));
        // 263 bytes → 88 groups of 4 characters, the last with one '='.
        assert_eq!(s.len(), 1 + 352);
        assert!(s.ends_with('='));
        assert!(!s.contains('+') && !s.contains('/'), "URL-safe alphabet");
    }

    #[test]
    fn random_accounts_are_valid_sim_numbers_with_importable_sessions() {
        for index in 0..9 {
            let dc = dc_for(index);
            let (phone, session) = random_sim_account(dc);
            assert!(tgvisor::domain::validation::PhoneNumber::parse(&phone).is_ok());
            assert_eq!(phone.len(), 1 + 10);
            assert!(phone.starts_with(&format!("+99966{dc}")));
            let data = SessionData::from_telethon_string(&session).expect("importable");
            assert_eq!(data.home_dc, i32::from(dc));
        }
        assert_eq!(sim_phone(3, 42), "+9996630042");
        assert_eq!((dc_for(0), dc_for(1), dc_for(2), dc_for(3)), (1, 2, 3, 1));
    }
}
