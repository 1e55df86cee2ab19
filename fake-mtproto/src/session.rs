//! Per-TCP-connection MTProto state: the client's session id (echoed in
//! every answer), the server's message ids and sequence numbers, and the
//! parsing of the plaintext the client sends.

use crate::crypto::{self, Key};
use std::time::{SystemTime, UNIX_EPOCH};

/// The server salt the fake hands out. grammers starts with salt 0 and only
/// asks for future salts once it holds a non-zero one, so 0 keeps it from
/// ever needing `get_future_salts` (which the fake still answers).
pub(crate) const SERVER_SALT: i64 = 0;

/// One decrypted client message (inside a container or not).
#[derive(Debug, Clone)]
pub(crate) struct ClientMessage {
    pub msg_id: i64,
    pub seq_no: i32,
    pub body: Vec<u8>,
}

/// A client packet that could not be read.
#[derive(Debug)]
pub(crate) enum ParseError {
    Crypto(crypto::CryptoError),
    Truncated,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Crypto(e) => e.fmt(f),
            Self::Truncated => f.write_str("truncated message"),
        }
    }
}

/// The MTProto session on one TCP connection.
pub(crate) struct Session {
    key: Key,
    /// The client's session id, learned from its first message.
    session_id: Option<i64>,
    last_msg_id: i64,
    /// Content-related messages sent so far.
    content_sent: i32,
}

impl Session {
    pub(crate) fn new(key: Key) -> Self {
        Self {
            key,
            session_id: None,
            last_msg_id: 0,
            content_sent: 0,
        }
    }

    /// Decrypts a packet; returns the message and whether its session id is
    /// new on this connection (then Telegram sends `new_session_created`).
    pub(crate) fn open(&mut self, packet: &[u8]) -> Result<(ClientMessage, bool), ParseError> {
        let plain = crypto::decrypt_from_client(&self.key, packet).map_err(ParseError::Crypto)?;
        let mut r = Reader::new(&plain);
        let _salt = r.i64()?; // any salt is accepted
        let session_id = r.i64()?;
        let msg_id = r.i64()?;
        let seq_no = r.i32()?;
        let len = r.len()?;
        let body = r.bytes(len)?.to_vec();
        let new_session = self.session_id != Some(session_id);
        self.session_id = Some(session_id);
        Ok((
            ClientMessage {
                msg_id,
                seq_no,
                body,
            },
            new_session,
        ))
    }

    /// A new server message id: time-based, increasing, ≡ 1 (mod 4) for
    /// answers and ≡ 3 for messages the server sends on its own.
    fn next_msg_id(&mut self, response: bool) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut id = ((now.as_secs() as i64) << 32) | (i64::from(now.subsec_nanos()) & !3);
        if id <= self.last_msg_id {
            id = (self.last_msg_id & !3) + 4;
        }
        id |= if response { 1 } else { 3 };
        self.last_msg_id = id;
        id
    }

    fn next_seq_no(&mut self, content_related: bool) -> i32 {
        if content_related {
            self.content_sent += 1;
            self.content_sent * 2 - 1
        } else {
            self.content_sent * 2
        }
    }

    /// Encrypts one server message. `wrong_session` sends it under another
    /// session id (grammers panics on that: see `FakeServer::panic_client_on_next`).
    pub(crate) fn seal(
        &mut self,
        body: &[u8],
        content_related: bool,
        response: bool,
        wrong_session: bool,
    ) -> Vec<u8> {
        let mut session_id = self.session_id.unwrap_or(0);
        if wrong_session {
            session_id = session_id.wrapping_add(1);
        }
        let msg_id = self.next_msg_id(response);
        let seq_no = self.next_seq_no(content_related);
        let mut plain = Vec::with_capacity(32 + body.len());
        plain.extend_from_slice(&SERVER_SALT.to_le_bytes());
        plain.extend_from_slice(&session_id.to_le_bytes());
        plain.extend_from_slice(&msg_id.to_le_bytes());
        plain.extend_from_slice(&seq_no.to_le_bytes());
        plain.extend_from_slice(&(body.len() as i32).to_le_bytes());
        plain.extend_from_slice(body);
        crypto::encrypt_for_client(&self.key, &plain)
    }
}

/// A bounds-checked little-endian reader.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let end = self.pos.checked_add(n).ok_or(ParseError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(ParseError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn i32(&mut self) -> Result<i32, ParseError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.bytes(4)?);
        Ok(i32::from_le_bytes(b))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ParseError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.bytes(4)?);
        Ok(u32::from_le_bytes(b))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, ParseError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.bytes(8)?);
        Ok(i64::from_le_bytes(b))
    }

    /// A non-negative length.
    pub(crate) fn len(&mut self) -> Result<usize, ParseError> {
        usize::try_from(self.i32()?).map_err(|_| ParseError::Truncated)
    }
}
