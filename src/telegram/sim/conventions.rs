//! The sim's conventions (see the module docs of `sim`): the test-DC
//! phone numbers with their codes and 2FA password, the `@echo` user, how
//! long a code lives, and the DC addresses.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// The 2FA password of sim numbers that have one.
pub const SIM_2FA_PASSWORD: &str = "sim-password";
/// The id of the `@echo` user.
pub const ECHO_USER_ID: i64 = 1_000_001;
/// How long a login code stays valid.
pub const CODE_TTL: Duration = Duration::from_secs(300);

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
