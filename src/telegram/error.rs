//! What can go wrong talking to Telegram, in the terms the rest of tgvisor
//! acts on. Backends map their own errors (RPC names, I/O failures) here.

use crate::domain::AccountState;
use std::time::Duration;

/// What a FLOOD_WAIT applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FloodScope {
    /// The whole account (FLOOD_WAIT_X, FLOOD_PREMIUM_WAIT_X).
    Account,
    /// One chat (SLOWMODE_WAIT_X, per-chat send limits).
    Chat { chat_id: i64 },
}

/// A failed Telegram call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TgError {
    /// Telegram asks to wait this long before the same kind of call.
    #[error("flood wait of {seconds} s ({scope:?})")]
    FloodWait { seconds: u32, scope: FloodScope },
    /// The session is not (or no longer) signed in: AUTH_KEY_UNREGISTERED,
    /// SESSION_EXPIRED and friends.
    #[error("the session is not authorized")]
    Unauthorized,
    /// The authorization was terminated by the user or Telegram
    /// (SESSION_REVOKED, AUTH_KEY_INVALID).
    #[error("the session was revoked")]
    Revoked,
    /// The same auth key is in use elsewhere (AUTH_KEY_DUPLICATED).
    #[error("the session's auth key is in use by another connection")]
    AuthKeyDuplicated,
    /// The account is banned or deactivated (USER_DEACTIVATED_BAN, PHONE_NUMBER_BANNED).
    #[error("the account is banned")]
    Banned,
    /// The chat does not exist or is not reachable (PEER_ID_INVALID,
    /// USERNAME_NOT_OCCUPIED, CHAT_WRITE_FORBIDDEN…).
    #[error("the chat is invalid or not reachable")]
    PeerInvalid,
    /// The phone number is not valid for Telegram (PHONE_NUMBER_INVALID).
    #[error("the phone number is invalid")]
    PhoneNumberInvalid,
    /// PHONE_CODE_INVALID / PHONE_CODE_EMPTY.
    #[error("the login code is wrong")]
    CodeInvalid,
    /// PHONE_CODE_EXPIRED.
    #[error("the login code has expired")]
    CodeExpired,
    /// PASSWORD_HASH_INVALID.
    #[error("the two-step verification password is wrong")]
    PasswordInvalid,
    /// MESSAGE_TOO_LONG, MESSAGE_EMPTY and other bad arguments.
    #[error("Telegram refused the request: {0}")]
    BadRequest(String),
    /// The connection failed or dropped.
    #[error("network error: {0}")]
    Network(String),
    /// No answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Anything else, with Telegram's error name.
    #[error("Telegram error {code} {name}")]
    Other { code: i32, name: String },
}

impl TgError {
    /// The account state a session-fatal error leads to (`None`: not fatal).
    pub fn fatal_state(&self) -> Option<AccountState> {
        match self {
            Self::Unauthorized => Some(AccountState::Unauthorized),
            Self::Revoked => Some(AccountState::Revoked),
            Self::Banned => Some(AccountState::Banned),
            Self::AuthKeyDuplicated => Some(AccountState::DuplicateKey),
            _ => None,
        }
    }
}

impl TgError {
    /// A stable code for API answers, metrics and events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::FloodWait { .. } => "flood_wait",
            Self::Unauthorized => "unauthorized",
            Self::Revoked => "revoked",
            Self::AuthKeyDuplicated => "auth_key_duplicated",
            Self::Banned => "banned",
            Self::PeerInvalid => "peer_invalid",
            Self::PhoneNumberInvalid => "phone_number_invalid",
            Self::CodeInvalid => "code_invalid",
            Self::CodeExpired => "code_expired",
            Self::PasswordInvalid => "password_invalid",
            Self::BadRequest(_) => "bad_request",
            Self::Network(_) => "network",
            Self::Timeout(_) => "timeout",
            Self::Other { .. } => "other",
        }
    }

    /// Whose doing the failure is. The client's: what a request asked for
    /// (a chat that does not exist or is not reachable, a bad argument,
    /// a wrong code or password) or what its account's owner must mend (a
    /// revoked, unauthorized or banned session); Telegram refusing a
    /// request with a 4xx error. The service's (or Telegram's, on the
    /// service's behalf): the network, a timeout, Telegram's own 5xx, an
    /// answer tgvisor could not read, a FLOOD_WAIT (Telegram telling
    /// tgvisor, not one client, to slow down).
    pub fn fault(&self) -> crate::domain::Fault {
        use crate::domain::Fault;
        match self {
            Self::PeerInvalid
            | Self::BadRequest(_)
            | Self::PhoneNumberInvalid
            | Self::CodeInvalid
            | Self::CodeExpired
            | Self::PasswordInvalid
            | Self::Unauthorized
            | Self::Revoked
            | Self::AuthKeyDuplicated
            | Self::Banned => Fault::Client,
            Self::FloodWait { .. } | Self::Network(_) | Self::Timeout(_) => Fault::Server,
            Self::Other { code, .. } if (400..500).contains(code) => Fault::Client,
            Self::Other { .. } => Fault::Server,
        }
    }

    /// Worth retrying the same call later (after the wait, for flood waits).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::FloodWait { .. } | Self::Network(_) | Self::Timeout(_)
        ) || matches!(self, Self::Other { code, .. } if *code >= 500)
            // An answer we could not read: the call may or may not have
            // happened, and a retry (same random_id) is how to find out.
            || matches!(self, Self::Other { name, .. } if name == "BAD_RESPONSE")
    }

    /// Telegram already has a message with this random id: an earlier
    /// attempt of the same send went through (its answer was lost).
    pub fn is_random_id_duplicate(&self) -> bool {
        matches!(self, Self::Other { name, .. } if name == "RANDOM_ID_DUPLICATE")
    }

    /// A send Telegram accepted whose answer did not carry the new message
    /// in a shape we read: it was sent, its id is unknown.
    pub fn is_sent_without_message(&self) -> bool {
        matches!(self, Self::Other { name, .. } if name == "SENT_MESSAGE_NOT_FOUND")
    }

    /// The session can no longer be used as it is.
    pub fn is_session_fatal(&self) -> bool {
        matches!(
            self,
            Self::Unauthorized | Self::Revoked | Self::AuthKeyDuplicated | Self::Banned
        )
    }

    /// Maps a Telegram RPC error (`code`, `NAME`, optional `_X` value).
    pub fn from_rpc(code: i32, name: &str, value: Option<u32>) -> Self {
        match (name, value) {
            ("FLOOD_WAIT" | "FLOOD_PREMIUM_WAIT", Some(s)) => Self::FloodWait {
                seconds: s,
                scope: FloodScope::Account,
            },
            // The chat is filled in by the caller, which knows it.
            ("SLOWMODE_WAIT", Some(s)) => Self::FloodWait {
                seconds: s,
                scope: FloodScope::Chat { chat_id: 0 },
            },
            ("AUTH_KEY_UNREGISTERED" | "SESSION_EXPIRED" | "SESSION_PASSWORD_NEEDED", _) => {
                Self::Unauthorized
            }
            ("SESSION_REVOKED" | "AUTH_KEY_INVALID" | "AUTH_KEY_PERM_EMPTY", _) => Self::Revoked,
            ("AUTH_KEY_DUPLICATED", _) => Self::AuthKeyDuplicated,
            ("USER_DEACTIVATED" | "USER_DEACTIVATED_BAN" | "PHONE_NUMBER_BANNED", _) => {
                Self::Banned
            }
            (
                "PEER_ID_INVALID"
                | "USERNAME_NOT_OCCUPIED"
                | "USERNAME_INVALID"
                | "CHAT_WRITE_FORBIDDEN"
                | "CHANNEL_PRIVATE"
                | "USER_IS_BLOCKED"
                | "INPUT_USER_DEACTIVATED",
                _,
            ) => Self::PeerInvalid,
            ("PHONE_NUMBER_INVALID", _) => Self::PhoneNumberInvalid,
            ("PHONE_CODE_INVALID" | "PHONE_CODE_EMPTY", _) => Self::CodeInvalid,
            ("PHONE_CODE_EXPIRED", _) => Self::CodeExpired,
            ("PASSWORD_HASH_INVALID", _) => Self::PasswordInvalid,
            (
                "MESSAGE_TOO_LONG" | "MESSAGE_EMPTY" | "FILE_PARTS_INVALID" | "FILE_PART_INVALID",
                _,
            ) => Self::BadRequest(name.to_owned()),
            _ if code == 401 => Self::Unauthorized,
            _ => Self::Other {
                code,
                name: name.to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requests_own_mistakes_are_the_clients_fault_the_network_the_services() {
        use crate::domain::Fault;
        for e in [
            TgError::PeerInvalid,
            TgError::BadRequest("MESSAGE_TOO_LONG".into()),
            TgError::from_rpc(400, "CHAT_ADMIN_REQUIRED", None),
            TgError::from_rpc(403, "CHAT_SEND_MEDIA_FORBIDDEN", None),
            TgError::Revoked,
        ] {
            assert_eq!(e.fault(), Fault::Client, "{e:?}");
        }
        for e in [
            TgError::Network("reset".into()),
            TgError::Timeout(Duration::from_secs(30)),
            TgError::from_rpc(500, "INTERNAL", None),
            TgError::Other {
                code: 0,
                name: "BAD_RESPONSE".into(),
            },
            TgError::from_rpc(420, "FLOOD_WAIT", Some(3)),
        ] {
            assert_eq!(e.fault(), Fault::Server, "{e:?}");
        }
    }

    #[test]
    fn rpc_errors_map_to_what_tgvisor_acts_on() {
        assert_eq!(
            TgError::from_rpc(420, "FLOOD_WAIT", Some(31)),
            TgError::FloodWait {
                seconds: 31,
                scope: FloodScope::Account
            }
        );
        assert_eq!(
            TgError::from_rpc(420, "FLOOD_PREMIUM_WAIT", Some(3)),
            TgError::FloodWait {
                seconds: 3,
                scope: FloodScope::Account
            }
        );
        assert!(matches!(
            TgError::from_rpc(420, "SLOWMODE_WAIT", Some(10)),
            TgError::FloodWait {
                seconds: 10,
                scope: FloodScope::Chat { .. }
            }
        ));
        assert_eq!(
            TgError::from_rpc(401, "SESSION_REVOKED", None),
            TgError::Revoked
        );
        assert_eq!(
            TgError::from_rpc(406, "AUTH_KEY_DUPLICATED", None),
            TgError::AuthKeyDuplicated
        );
        assert_eq!(
            TgError::from_rpc(401, "SOMETHING_NEW", None),
            TgError::Unauthorized
        );
        assert_eq!(
            TgError::from_rpc(400, "PEER_ID_INVALID", None),
            TgError::PeerInvalid
        );
        assert_eq!(
            TgError::from_rpc(500, "INTERNAL", None),
            TgError::Other {
                code: 500,
                name: "INTERNAL".into()
            }
        );
        assert!(TgError::from_rpc(500, "INTERNAL", None).is_transient());
        assert!(!TgError::PeerInvalid.is_transient());
        assert!(TgError::Banned.is_session_fatal());
    }
}
