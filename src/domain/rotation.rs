//! Why an account's session is replaced by a new one.

/// Why a session is rotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationReason {
    Age,
    Errors,
    Manual,
}

impl RotationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Age => "age",
            Self::Errors => "errors",
            Self::Manual => "manual",
        }
    }
}
