//! The messages an [`AccountActor`](super::AccountActor) answers, and why a
//! call through it fails.

use crate::domain::validation::ChatRef;
use crate::domain::{AccountState, RotationReason};
use crate::telegram::{Message, TgError};
use actix::prelude::*;

/// Why a call through the account could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the account is not connected (state: {0})")]
    NotConnected(AccountState),
    #[error(transparent)]
    Telegram(#[from] TgError),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Read a chat's recent messages.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Message>, CallError>")]
pub struct History {
    pub chat: ChatRef,
    pub limit: u32,
    /// Only messages older than this id (the next page).
    pub before: Option<i32>,
}

/// Upload one part of a file (Telegram's `saveFilePart`, or
/// `saveBigFilePart` when `total_parts` is given).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CallError>")]
pub struct SavePart {
    pub file_id: i64,
    /// 0-based.
    pub part: u32,
    pub total_parts: Option<u32>,
    pub bytes: actix_web::web::Bytes,
}

/// Rotate the account's session; answers the new session row id.
#[derive(Debug, Message)]
#[rtype(result = "Result<i64, CallError>")]
pub struct Rotate(pub RotationReason);

/// The account's current state.
#[derive(Debug, Message)]
#[rtype(result = "AccountState")]
pub struct GetState;

/// A Telegram error met by a background task (the outbox drain) that
/// concerns the whole account.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct AccountWideTgError(pub(super) TgError);
