//! The core vocabulary every layer shares: validated values from clients,
//! the states of accounts, messages and uploads, whose fault a failure is.
//! It depends on nothing else in the crate.

mod account_state;
mod fault;
mod limits;
mod message_status;
mod rotation;
mod upload_status;
pub mod validation;

pub use account_state::AccountState;
pub use fault::Fault;
pub use limits::PART_SIZE;
pub use message_status::MessageStatus;
pub use rotation::RotationReason;
pub use upload_status::UploadStatus;
pub use validation::{ChatRef, Email, Password, PhoneNumber, Username, ValidationError};
