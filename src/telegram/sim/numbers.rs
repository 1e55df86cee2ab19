//! The sim's phone-number conventions (Telegram's test DCs) and its DC
//! addresses.

use std::net::{Ipv4Addr, SocketAddrV4};

/// DC X's address in the sim (Telegram's real production addresses; never dialled).
pub(super) fn dc_addr(dc: i32) -> SocketAddrV4 {
    let last = match dc {
        1 => 50,
        2 => 51,
        3 => 100,
        _ => 51,
    };
    SocketAddrV4::new(Ipv4Addr::new(149, 154, 167, last), 443)
}

/// `(dc, code, two_factor)` for a sim phone number.
pub(super) fn parse_sim_phone(e164: &str) -> Option<(i32, String, bool)> {
    let rest = e164.strip_prefix("+99966")?;
    let bytes = rest.as_bytes();
    if bytes.len() != 5 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let dc = i32::from(bytes[0] - b'0');
    if !(1..=3).contains(&dc) {
        return None;
    }
    let code = std::iter::repeat_n(char::from(bytes[0]), 5).collect();
    Some((dc, code, bytes[1] == b'9'))
}
