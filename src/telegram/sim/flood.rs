//! Injected FLOOD_WAITs: the rules a test or an operator sets, and how a
//! call is matched against them.

use crate::telegram::{FloodScope, TgError};

/// A FLOOD_WAIT to inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FloodRule {
    pub target: FloodTarget,
    pub seconds: u32,
    /// How many matching calls get it.
    pub times: u32,
}

/// Which calls a [`FloodRule`] hits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FloodTarget {
    /// Every call (account-wide wait).
    Global,
    /// One method, e.g. `messages.sendMessage` (account-wide wait).
    Method(String),
    /// Calls about one chat (per-chat wait, like SLOWMODE_WAIT).
    Chat(i64),
}

/// Spends one hit of the first rule that matches a call of `method` (about
/// `chat`, if any) and returns the FLOOD_WAIT it injects.
pub(super) fn take(floods: &mut [FloodRule], method: &str, chat: Option<i64>) -> Option<TgError> {
    let rule = floods.iter_mut().find(|r| {
        r.times > 0
            && match &r.target {
                FloodTarget::Global => true,
                FloodTarget::Method(m) => m == method,
                FloodTarget::Chat(c) => chat == Some(*c),
            }
    })?;
    rule.times -= 1;
    let scope = match rule.target {
        FloodTarget::Chat(chat_id) => FloodScope::Chat { chat_id },
        _ => FloodScope::Account,
    };
    Some(TgError::FloodWait {
        seconds: rule.seconds,
        scope,
    })
}
