//! [`ValidationError`]: the one error every validated input type returns.

/// A rejected input: which field, a stable machine code, and a message safe
/// to show (it never repeats the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Input field name, e.g. `"username"`.
    pub field: &'static str,
    /// Stable code, e.g. `"too_short"`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: &'static str,
}

impl ValidationError {
    /// Builds an error.
    pub const fn new(field: &'static str, code: &'static str, message: &'static str) -> Self {
        Self {
            field,
            code,
            message,
        }
    }
}
