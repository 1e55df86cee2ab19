//! The TL requests the grammers client sends: a text, a media message and
//! the input media for an uploaded file.

use crate::telegram::{MediaKind, SendOptions, TgError, UploadedFile};
use grammers_tl_types as tl;

/// `messages.sendMessage` of `text` to `peer`.
pub(super) fn send_message(
    peer: tl::enums::InputPeer,
    text: &str,
    opts: &SendOptions,
) -> tl::functions::messages::SendMessage {
    tl::functions::messages::SendMessage {
        no_webpage: false,
        silent: opts.silent,
        background: false,
        clear_draft: false,
        noforwards: false,
        update_stickersets_order: false,
        invert_media: false,
        allow_paid_floodskip: false,
        peer,
        reply_to: reply_to(opts),
        message: text.to_owned(),
        random_id: opts.random_id,
        reply_markup: None,
        entities: None,
        schedule_date: None,
        schedule_repeat_period: None,
        send_as: None,
        quick_reply_shortcut: None,
        effect: None,
        allow_paid_stars: None,
        suggested_post: None,
        rich_message: None,
    }
}

/// `messages.sendMedia` of `media` with `caption` to `peer`.
pub(super) fn send_media(
    peer: tl::enums::InputPeer,
    media: tl::enums::InputMedia,
    caption: &str,
    opts: &SendOptions,
) -> tl::functions::messages::SendMedia {
    tl::functions::messages::SendMedia {
        silent: opts.silent,
        background: false,
        clear_draft: false,
        noforwards: false,
        update_stickersets_order: false,
        invert_media: false,
        allow_paid_floodskip: false,
        peer,
        reply_to: reply_to(opts),
        media,
        message: caption.to_owned(),
        random_id: opts.random_id,
        reply_markup: None,
        entities: None,
        schedule_date: None,
        schedule_repeat_period: None,
        send_as: None,
        quick_reply_shortcut: None,
        effect: None,
        allow_paid_stars: None,
        suggested_post: None,
    }
}

/// The reply header for `opts.reply_to`.
fn reply_to(opts: &SendOptions) -> Option<tl::enums::InputReplyTo> {
    opts.reply_to.map(|id| {
        tl::enums::InputReplyTo::Message(tl::types::InputReplyToMessage {
            reply_to_msg_id: id,
            top_msg_id: None,
            reply_to_peer_id: None,
            quote_text: None,
            quote_entities: None,
            quote_offset: None,
            monoforum_peer_id: None,
            todo_item_id: None,
            poll_option: None,
        })
    })
}

/// The input media for an uploaded file.
pub(super) fn input_media(
    file: &UploadedFile,
    kind: MediaKind,
) -> Result<tl::enums::InputMedia, TgError> {
    let parts =
        i32::try_from(file.parts).map_err(|_| TgError::BadRequest("FILE_PARTS_INVALID".into()))?;
    let input_file = if file.big {
        tl::enums::InputFile::Big(tl::types::InputFileBig {
            id: file.file_id,
            parts,
            name: file.name.clone(),
        })
    } else {
        tl::enums::InputFile::File(tl::types::InputFile {
            id: file.file_id,
            parts,
            name: file.name.clone(),
            md5_checksum: String::new(),
        })
    };
    Ok(match kind {
        MediaKind::Photo => {
            tl::enums::InputMedia::UploadedPhoto(tl::types::InputMediaUploadedPhoto {
                spoiler: false,
                live_photo: false,
                file: input_file,
                stickers: None,
                ttl_seconds: None,
                video: None,
            })
        }
        MediaKind::Document => {
            tl::enums::InputMedia::UploadedDocument(tl::types::InputMediaUploadedDocument {
                nosound_video: false,
                force_file: true,
                spoiler: false,
                file: input_file,
                thumb: None,
                mime_type: mime_for(&file.name).to_owned(),
                attributes: vec![tl::enums::DocumentAttribute::Filename(
                    tl::types::DocumentAttributeFilename {
                        file_name: file.name.clone(),
                    },
                )],
                stickers: None,
                video_cover: None,
                video_timestamp: None,
                ttl_seconds: None,
            })
        }
    })
}

/// A MIME type from a file name's extension (Telegram requires one).
pub(super) fn mime_for(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("mp4") => "video/mp4",
        Some("mp3") => "audio/mpeg",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    }
}
