//! Telegram sessions: what a session holds ([`SessionData`]), how it is
//! imported from other tools, and the encrypted store that keeps it.

pub mod data;
pub mod store;

pub use data::{AuthKey, DcEntry, ImportError, SessionData};
pub use store::{LoadedSession, RewrapReport, SessionInfo, SessionStore, SessionStoreError};
