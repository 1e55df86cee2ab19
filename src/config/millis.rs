//! Serde for `Duration` settings kept in whole milliseconds: the keys end
//! in `_ms` and TOML and environment variables give a number of
//! milliseconds; use as `#[serde(with = "super::millis")]`.

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// Reads whole milliseconds. A negative number, a float or a string fails
/// exactly as a `u64` setting would, naming the key.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

/// Writes whole milliseconds (saturating at `u64::MAX`).
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}
