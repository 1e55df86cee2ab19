//! Telegram's fixed limits that configuration defaults and checks derive from.

/// Part size tgvisor uploads with.
pub const PART_SIZE: usize = 512 * 1024;
