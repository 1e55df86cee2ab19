//! Security primitives: encryption at rest, password hashing, access tokens
//! and input validation. Each submodule owns one concern.

pub mod crypto;
pub mod jwt;
pub mod password;
pub mod validation;
