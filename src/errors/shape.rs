//! A message's shape: the message with its variable parts (numbers, hex,
//! UUIDs, quoted text) replaced, so one failing statement is one group.

use regex::Regex;
use std::sync::LazyLock;

/// A message longer than this is cut before it is shaped and kept.
const MAX_MESSAGE: usize = 512;

static VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    // unwrap: a constant, valid pattern.
    Regex::new(
        r#"(?x)
        "[^"]*" | '[^']*'                                   # quoted text
        | [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}
        | \b0x[0-9a-fA-F]+\b | \b[0-9a-fA-F]{16,}\b        # hex
        | \b\d+(\.\d+)?\b                                   # numbers
        "#,
    )
    .unwrap()
});

/// `message` with its variable parts replaced (see the module docs).
pub fn shape(message: &str) -> String {
    let cut = cut(message);
    VARIABLE
        .replace_all(cut, |c: &regex::Captures<'_>| {
            let m = &c[0];
            if m.starts_with('"') || m.starts_with('\'') {
                "\"…\"".to_owned()
            } else {
                "N".to_owned()
            }
        })
        .into_owned()
}

pub(super) fn cut(message: &str) -> &str {
    &message[..message.floor_char_boundary(MAX_MESSAGE)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_and_uuids_are_variable_parts() {
        assert_eq!(
            shape(r#"no such key "abc" in 550e8400-e29b-41d4-a716-446655440000"#),
            "no such key \"…\" in N"
        );
    }
}
