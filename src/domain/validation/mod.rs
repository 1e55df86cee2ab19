//! Input validation at the API boundary: "parse, don't validate".
//!
//! Owns the newtypes that untrusted input is parsed into before it reaches
//! the domain ([`Username`], [`Email`], [`Password`], [`PhoneNumber`],
//! [`ChatRef`]) and the one error type they share, [`ValidationError`],
//! whose `field`/`code` pair is a stable contract with API clients. Types
//! that hold sensitive data keep it out of `Debug`/`Display`.

// The macros come before the files that use them (textual scope) and
// name every item by its full path.

/// Implements `FromStr`, `TryFrom<String>` and `Deserialize` (via
/// `TryFrom<String>`) in terms of `parse`.
macro_rules! parse_impls {
    ($ty:ty) => {
        impl std::str::FromStr for $ty {
            type Err = $crate::domain::validation::ValidationError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $crate::domain::validation::ValidationError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }
    };
}

/// Implements `Display` and `Serialize` from a `&str` accessor.
macro_rules! string_impls {
    ($ty:ty) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

mod chat_ref;
mod email;
mod error;
mod password;
mod phone;
mod text;
mod username;

pub use chat_ref::ChatRef;
pub use email::Email;
pub use error::ValidationError;
pub use password::Password;
pub use phone::PhoneNumber;
pub use text::invisible;
pub use username::Username;

#[cfg(test)]
mod tests;
