//! The `Full` TCP transport (`len ‖ seq ‖ payload ‖ crc32`), the one
//! grammers 0.11 always uses. grammers' own [`Full`] packs and checks frames
//! the same way on both sides; this module adds the buffering and the limits
//! a server needs.

use grammers_crypto::DequeBuffer;
use grammers_mtproto::transport::{Full, Transport};

/// Largest frame accepted from a client (grammers never sends more than
/// about 1 MiB: a 512 KiB file part plus headers).
pub(crate) const MAX_FRAME: usize = 2 * 1024 * 1024;

/// A frame the client should not have sent.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The length prefix is outside 12..=MAX_FRAME.
    BadLength(i64),
    /// Wrong sequence number or checksum.
    Corrupt(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadLength(len) => write!(f, "bad frame length {len}"),
            Self::Corrupt(e) => f.write_str(e),
        }
    }
}

/// Both directions of the `Full` transport on one connection.
pub(crate) struct FullCodec {
    full: Full,
    buf: Vec<u8>,
}

impl FullCodec {
    pub(crate) fn new() -> Self {
        Self {
            full: Full::new(),
            buf: Vec::new(),
        }
    }

    /// Bytes read from the socket.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame's payload, if one has arrived.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(prefix) = self.buf.get(..4) else {
            return Ok(None);
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(prefix);
        let len = i32::from_le_bytes(len);
        let Ok(len) = usize::try_from(len) else {
            return Err(FrameError::BadLength(i64::from(len)));
        };
        if !(12..=MAX_FRAME).contains(&len) {
            return Err(FrameError::BadLength(len as i64));
        }
        if self.buf.len() < len {
            return Ok(None);
        }
        let mut frame: Vec<u8> = self.buf.drain(..len).collect();
        let unpacked = self
            .full
            .unpack(&mut frame)
            .map_err(|e| FrameError::Corrupt(e.to_string()))?;
        Ok(Some(frame[unpacked.data_range].to_vec()))
    }

    /// Frames `payload` (a multiple of 4 bytes long) for sending.
    pub(crate) fn pack(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut buffer = DequeBuffer::with_capacity(payload.len() + 4, 8);
        buffer.extend(payload.iter().copied());
        self.full.pack(&mut buffer);
        buffer.as_ref().to_vec()
    }
}

/// What Telegram sends instead of a frame when it refuses the connection
/// (a negative length): `-404` for an unknown auth key.
pub(crate) fn error_status(code: i32) -> [u8; 4] {
    (-code).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_split_reads_are_reassembled() {
        let mut client = FullCodec::new();
        let mut server = FullCodec::new();
        let one = client.pack(&[1, 2, 3, 4]);
        let two = client.pack(&[5, 6, 7, 8, 9, 10, 11, 12]);
        let mut wire = one.clone();
        wire.extend_from_slice(&two);
        server.feed(&wire[..5]);
        assert!(server.next_frame().unwrap().is_none());
        server.feed(&wire[5..]);
        assert_eq!(server.next_frame().unwrap().unwrap(), vec![1, 2, 3, 4]);
        assert_eq!(
            server.next_frame().unwrap().unwrap(),
            vec![5, 6, 7, 8, 9, 10, 11, 12]
        );
        assert!(server.next_frame().unwrap().is_none());
    }

    #[test]
    fn refuses_bad_lengths_and_checksums() {
        let mut server = FullCodec::new();
        server.feed(&error_status(404));
        assert!(matches!(
            server.next_frame(),
            Err(FrameError::BadLength(-404))
        ));

        let mut server = FullCodec::new();
        server.feed(&((MAX_FRAME as i32) + 4).to_le_bytes());
        assert!(matches!(server.next_frame(), Err(FrameError::BadLength(_))));

        let mut server = FullCodec::new();
        let mut frame = FullCodec::new().pack(&[1, 2, 3, 4]);
        frame[9] ^= 0xff;
        server.feed(&frame);
        assert!(matches!(server.next_frame(), Err(FrameError::Corrupt(_))));
    }
}
