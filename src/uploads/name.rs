//! The check of an upload's file name.

use crate::domain::validation::ValidationError;

/// Checks a file name: 1 to 255 bytes, no path, no control or invisible
/// format characters, not `.` or `..`, no leading or trailing spaces, no
/// trailing dot.
pub fn validate_name(name: &str) -> Result<(), ValidationError> {
    if name.trim().is_empty() {
        return Err(ValidationError::new(
            "name",
            "required",
            "a file name is required (?name=…)",
        ));
    }
    if name.len() > 255 {
        return Err(ValidationError::new(
            "name",
            "too_long",
            "at most 255 bytes",
        ));
    }
    // `.` and `..` name directories, and a name that ends in a space or a
    // dot is not the name it reads as (Windows drops them when it saves).
    if name == "." || name == ".." || name.ends_with([' ', '.']) || name.starts_with(' ') {
        return Err(ValidationError::new(
            "name",
            "invalid_name",
            "a file name that is not '.' or '..' and does not start with a space or end with a space or a dot",
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || crate::domain::validation::invisible(c) || c == '/' || c == '\\')
    {
        return Err(ValidationError::new(
            "name",
            "invalid_characters",
            "a file name without path separators or control characters",
        ));
    }
    Ok(())
}
