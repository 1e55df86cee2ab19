//! A message to accept: its validated parts (the text or caption within
//! Telegram's limits, the idempotency key, the media) and the hash that
//! tells two requests under one key apart.

use crate::domain::validation::{ChatRef, ValidationError};
use sha2::{Digest, Sha256};

/// Telegram's limit on a message's text, in UTF-16 code units (how
/// Telegram counts): counting the same way means nothing we accept is
/// refused later as MESSAGE_TOO_LONG.
pub const MAX_TEXT_UTF16: usize = 4096;

/// A client's `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        const F: &str = "idempotency_key";
        if input.is_empty() {
            return Err(ValidationError::new(F, "empty", "must not be empty"));
        }
        if input.len() > 255 {
            return Err(ValidationError::new(
                F,
                "too_long",
                "must be at most 255 characters",
            ));
        }
        if !input.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ValidationError::new(
                F,
                "invalid_characters",
                "must be visible ASCII characters (no spaces)",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyKey(..)")
    }
}

/// Checks a message text: not blank, within Telegram's length.
pub fn validate_text(text: &str) -> Result<(), ValidationError> {
    const F: &str = "text";
    if text.trim().is_empty() {
        return Err(ValidationError::new(F, "empty", "is required"));
    }
    // NUL cannot be stored (PostgreSQL text) nor sent; other control
    // characters but tab and line breaks have no place in a message.
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(ValidationError::new(
            F,
            "invalid_characters",
            "must not contain control characters (tab and line breaks are fine)",
        ));
    }
    if text.encode_utf16().count() > MAX_TEXT_UTF16 {
        return Err(ValidationError::new(
            F,
            "too_long",
            "must be at most 4096 characters (UTF-16 code units, as Telegram counts)",
        ));
    }
    Ok(())
}

/// A validated message to accept.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub account_id: i64,
    pub user_id: i64,
    pub idempotency_key: Option<IdempotencyKey>,
    pub chat: ChatRef,
    /// The text, or the caption of media.
    pub text: String,
    pub reply_to: Option<i32>,
    pub silent: bool,
    /// A finished upload to send, when the message is media.
    pub media: Option<Media>,
}

/// A finished upload, sent as a photo or a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Media {
    pub upload_id: i64,
    pub kind: crate::telegram::MediaKind,
}

impl Media {
    /// The outbox row's `kind`.
    pub fn kind_str(self) -> &'static str {
        self.kind.as_str()
    }
}

/// Telegram's limit on a media caption.
pub const MAX_CAPTION_UTF16: usize = 1024;

/// Checks a media caption: may be empty, at most 1024 characters (UTF-16
/// code units), no control characters but tab and line breaks.
pub fn validate_caption(caption: &str) -> Result<(), ValidationError> {
    const F: &str = "caption";
    if caption
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(ValidationError::new(
            F,
            "invalid_characters",
            "must not contain control characters (tab and line breaks are fine)",
        ));
    }
    if caption.encode_utf16().count() > MAX_CAPTION_UTF16 {
        return Err(ValidationError::new(
            F,
            "too_long",
            "must be at most 1024 characters (UTF-16 code units, as Telegram counts)",
        ));
    }
    Ok(())
}

impl NewMessage {
    /// A send request, checked: the chat reference parses, the text is
    /// within Telegram's limits, `reply_to` is a message id, the key is
    /// well formed. `POST /messages` and WebSocket `send` frames both come
    /// through here.
    #[allow(clippy::too_many_arguments)]
    pub fn validated(
        account_id: i64,
        user_id: i64,
        chat: &str,
        text: String,
        reply_to: Option<i32>,
        silent: bool,
        idempotency_key: Option<&str>,
    ) -> Result<Self, ValidationError> {
        let chat = ChatRef::parse(chat)?;
        validate_text(&text)?;
        if reply_to.is_some_and(|r| r <= 0) {
            return Err(ValidationError::new(
                "reply_to",
                "invalid",
                "must be a positive message id",
            ));
        }
        let idempotency_key = idempotency_key.map(IdempotencyKey::parse).transpose()?;
        Ok(Self {
            account_id,
            user_id,
            idempotency_key,
            chat,
            text,
            reply_to,
            silent,
            media: None,
        })
    }

    /// Like [`NewMessage::validated`], for media: a finished upload sent
    /// with an optional caption (whether the upload exists, is the
    /// caller's and is finished is for the caller to check).
    #[allow(clippy::too_many_arguments)]
    pub fn validated_media(
        account_id: i64,
        user_id: i64,
        chat: &str,
        media: Media,
        caption: String,
        reply_to: Option<i32>,
        silent: bool,
        idempotency_key: Option<&str>,
    ) -> Result<Self, ValidationError> {
        validate_caption(&caption)?;
        // The text checks, with a stand-in text: the rest is the same.
        let mut msg = Self::validated(
            account_id,
            user_id,
            chat,
            "-".to_owned(),
            reply_to,
            silent,
            idempotency_key,
        )?;
        msg.text = caption;
        msg.media = Some(media);
        Ok(msg)
    }

    /// What makes two requests "the same" under one idempotency key.
    pub(super) fn request_hash(&self) -> String {
        let mut canonical = serde_json::json!({
            "account": self.account_id,
            "chat": self.chat.to_string(),
            "kind": "text",
            "text": self.text,
            "reply_to": self.reply_to,
            "silent": self.silent,
        });
        // Text requests hash as they always did (keys stored before media
        // existed must still match their retries); media adds its own.
        if let Some(m) = self.media {
            canonical["kind"] = m.kind_str().into();
            canonical["upload_id"] = m.upload_id.into();
        }
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits_count_utf16_units() {
        assert!(validate_text("hi").is_ok());
        assert_eq!(validate_text("").unwrap_err().code, "empty");
        assert_eq!(validate_text(" \n\t").unwrap_err().code, "empty");
        assert_eq!(
            validate_text("a\0b").unwrap_err().code,
            "invalid_characters"
        );
        assert_eq!(
            validate_text("bell\u{7}").unwrap_err().code,
            "invalid_characters"
        );
        assert!(validate_text("line one\r\n\tline two").is_ok());
        assert!(validate_text(&"a".repeat(4096)).is_ok());
        assert_eq!(
            validate_text(&"a".repeat(4097)).unwrap_err().code,
            "too_long"
        );
        // An emoji outside the BMP is two UTF-16 units, as Telegram counts it.
        assert!(validate_text(&"😀".repeat(2048)).is_ok());
        assert_eq!(
            validate_text(&"😀".repeat(2049)).unwrap_err().code,
            "too_long"
        );
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("0b7c7c1e-2f1a-4c1e-9e1a-5f0e0e0e0e0e").is_ok());
        assert_eq!(IdempotencyKey::parse("").unwrap_err().code, "empty");
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(256)).unwrap_err().code,
            "too_long"
        );
        assert_eq!(
            IdempotencyKey::parse("a b").unwrap_err().code,
            "invalid_characters"
        );
        assert_eq!(
            IdempotencyKey::parse("ключ").unwrap_err().code,
            "invalid_characters"
        );
        // Never printed.
        assert_eq!(
            format!("{:?}", IdempotencyKey::parse("secret").unwrap()),
            "IdempotencyKey(..)"
        );
    }

    #[test]
    fn the_request_hash_tells_requests_apart() {
        let base = NewMessage {
            account_id: 1,
            user_id: 1,
            idempotency_key: None,
            chat: ChatRef::Me,
            text: "hello".into(),
            reply_to: None,
            silent: false,
            media: None,
        };
        let same = base.clone();
        assert_eq!(base.request_hash(), same.request_hash());
        // A text request's hash is pinned: stored keys outlive upgrades.
        let pinned = serde_json::json!({
            "account": 1, "chat": "me", "kind": "text", "text": "hello",
            "reply_to": null, "silent": false,
        });
        let digest = Sha256::digest(pinned.to_string().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(base.request_hash(), hex);
        let mut other = base.clone();
        other.text = "hello!".into();
        assert_ne!(base.request_hash(), other.request_hash());
        let mut other = base.clone();
        other.account_id = 2;
        assert_ne!(base.request_hash(), other.request_hash());
        let mut other = base.clone();
        other.silent = true;
        assert_ne!(base.request_hash(), other.request_hash());
        // Media: the upload and how it is sent are part of the request.
        let photo = Media {
            upload_id: 7,
            kind: crate::telegram::MediaKind::Photo,
        };
        let mut media = base.clone();
        media.media = Some(photo);
        assert_ne!(base.request_hash(), media.request_hash());
        let mut other = media.clone();
        other.media = Some(Media {
            upload_id: 8,
            ..photo
        });
        assert_ne!(media.request_hash(), other.request_hash());
        let mut other = media.clone();
        other.media = Some(Media {
            kind: crate::telegram::MediaKind::Document,
            ..photo
        });
        assert_ne!(media.request_hash(), other.request_hash());
    }
}
