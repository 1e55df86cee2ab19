//! The sim's values in Telegram's TL types, shaped the way grammers 0.11
//! reads them.

use grammers_tl_types as tl;
use tgvisor::telegram::{Me, MediaKind, Message, Peer, PeerKind};

/// The access hash the fake hands out for a user (never checked).
pub(crate) fn access_hash(user_id: i64) -> i64 {
    (user_id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) as i64
}

pub(crate) fn now() -> i32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i32)
}

/// A full `user` object.
pub(crate) fn user(
    id: i64,
    first_name: &str,
    username: Option<&str>,
    is_self: bool,
    premium: bool,
) -> tl::enums::User {
    tl::types::User {
        is_self,
        contact: false,
        mutual_contact: false,
        deleted: false,
        bot: false,
        bot_chat_history: false,
        bot_nochats: false,
        verified: false,
        restricted: false,
        min: false,
        bot_inline_geo: false,
        support: false,
        scam: false,
        apply_min_photo: false,
        fake: false,
        bot_attach_menu: false,
        premium,
        attach_menu_enabled: false,
        bot_can_edit: false,
        close_friend: false,
        stories_hidden: false,
        stories_unavailable: false,
        contact_require_premium: false,
        bot_business: false,
        bot_has_main_app: false,
        bot_forum_view: false,
        bot_forum_can_manage_topics: false,
        bot_can_manage_bots: false,
        bot_guestchat: false,
        bot_guard: false,
        id,
        access_hash: Some(access_hash(id)),
        first_name: Some(first_name.to_owned()),
        last_name: None,
        username: username.map(str::to_owned),
        phone: None,
        photo: None,
        status: None,
        bot_info_version: None,
        restriction_reason: None,
        bot_inline_placeholder: None,
        lang_code: None,
        emoji_status: None,
        usernames: None,
        stories_max_id: None,
        color: None,
        profile_color: None,
        bot_active_users: None,
        bot_verification_icon: None,
        send_paid_messages_stars: None,
        linked_community_id: None,
    }
    .into()
}

pub(crate) fn user_from_me(me: &Me, is_self: bool) -> tl::enums::User {
    user(
        me.id,
        &me.first_name,
        me.username.as_deref(),
        is_self,
        me.premium,
    )
}

pub(crate) fn user_from_peer(peer: &Peer) -> tl::enums::User {
    user(
        peer.id,
        &peer.title,
        peer.username.as_deref(),
        peer.kind == PeerKind::SelfChat,
        false,
    )
}

pub(crate) fn peer_user(user_id: i64) -> tl::enums::Peer {
    tl::types::PeerUser { user_id }.into()
}

fn media(m: &Message, dc_id: i32) -> Option<tl::enums::MessageMedia> {
    let info = m.media.as_ref()?;
    // Stable made-up ids: nothing can download them from the fake.
    let id = (i64::from(m.id) << 20) ^ m.chat_id;
    let date = m.date.timestamp() as i32;
    let size = i64::try_from(info.size).unwrap_or(i64::MAX);
    Some(match info.kind {
        MediaKind::Photo => tl::types::MessageMediaPhoto {
            spoiler: false,
            live_photo: false,
            photo: Some(
                tl::types::Photo {
                    has_stickers: false,
                    id,
                    access_hash: access_hash(id),
                    file_reference: Vec::new(),
                    date,
                    sizes: vec![
                        tl::types::PhotoSize {
                            r#type: "x".to_owned(),
                            w: 800,
                            h: 600,
                            size: i32::try_from(size).unwrap_or(i32::MAX),
                        }
                        .into(),
                    ],
                    video_sizes: None,
                    dc_id,
                }
                .into(),
            ),
            ttl_seconds: None,
            video: None,
        }
        .into(),
        MediaKind::Document => tl::types::MessageMediaDocument {
            nopremium: false,
            spoiler: false,
            video: false,
            round: false,
            voice: false,
            document: Some(
                tl::types::Document {
                    id,
                    access_hash: access_hash(id),
                    file_reference: Vec::new(),
                    date,
                    mime_type: "application/octet-stream".to_owned(),
                    size,
                    thumbs: None,
                    video_thumbs: None,
                    dc_id,
                    attributes: info
                        .name
                        .iter()
                        .map(|name| {
                            tl::types::DocumentAttributeFilename {
                                file_name: name.clone(),
                            }
                            .into()
                        })
                        .collect(),
                }
                .into(),
            ),
            alt_documents: None,
            video_cover: None,
            video_timestamp: None,
            ttl_seconds: None,
        }
        .into(),
    })
}

/// A message of the account's, as Telegram shows it to the account: the
/// peer is the other side of the private chat (itself for Saved Messages).
pub(crate) fn message(m: &Message, dc_id: i32) -> tl::enums::Message {
    tl::types::Message {
        out: m.outgoing,
        mentioned: false,
        media_unread: false,
        silent: false,
        post: false,
        from_scheduled: false,
        legacy: false,
        edit_hide: false,
        pinned: false,
        noforwards: false,
        invert_media: false,
        offline: false,
        video_processing_pending: false,
        paid_suggested_post_stars: false,
        paid_suggested_post_ton: false,
        id: m.id,
        from_id: m.sender_id.map(peer_user),
        from_boosts_applied: None,
        from_rank: None,
        peer_id: peer_user(m.chat_id),
        saved_peer_id: None,
        fwd_from: None,
        via_bot_id: None,
        via_business_bot_id: None,
        guestchat_via_from: None,
        reply_to: m.reply_to.map(|reply_to_msg_id| {
            tl::types::MessageReplyHeader {
                reply_to_scheduled: false,
                forum_topic: false,
                quote: false,
                reply_to_ephemeral: false,
                reply_to_msg_id: Some(reply_to_msg_id),
                reply_to_peer_id: None,
                reply_from: None,
                reply_media: None,
                reply_to_top_id: None,
                quote_text: None,
                quote_entities: None,
                quote_offset: None,
                todo_item_id: None,
                poll_option: None,
            }
            .into()
        }),
        date: m.date.timestamp() as i32,
        message: m.text.clone(),
        media: media(m, dc_id),
        reply_markup: None,
        entities: None,
        views: None,
        forwards: None,
        replies: None,
        edit_date: m.edit_date.map(|d| d.timestamp() as i32),
        post_author: None,
        grouped_id: None,
        reactions: None,
        restriction_reason: None,
        ttl_period: None,
        quick_reply_shortcut_id: None,
        effect: None,
        factcheck: None,
        report_delivery_until_date: None,
        paid_message_stars: None,
        suggested_post: None,
        schedule_repeat_period: None,
        summary_from_language: None,
        rich_message: None,
    }
    .into()
}

/// `help.getConfig`'s answer: no DC options, so grammers keeps the address
/// it was given.
pub(crate) fn config(this_dc: i32) -> tl::enums::Config {
    let date = now();
    tl::types::Config {
        default_p2p_contacts: false,
        preload_featured_stickers: false,
        revoke_pm_inbox: true,
        blocked_mode: false,
        force_try_ipv6: false,
        date,
        expires: date + 3600,
        test_mode: false,
        this_dc,
        dc_options: Vec::new(),
        dc_txt_domain_name: "fake.invalid".to_owned(),
        chat_size_max: 200,
        megagroup_size_max: 200_000,
        forwarded_count_max: 100,
        online_update_period_ms: 210_000,
        offline_blur_timeout_ms: 5_000,
        offline_idle_timeout_ms: 30_000,
        online_cloud_timeout_ms: 300_000,
        notify_cloud_delay_ms: 30_000,
        notify_default_delay_ms: 1_500,
        push_chat_period_ms: 60_000,
        push_chat_limit: 2,
        edit_time_limit: 172_800,
        revoke_time_limit: i32::MAX,
        revoke_pm_time_limit: i32::MAX,
        rating_e_decay: 2_419_200,
        stickers_recent_limit: 200,
        channels_read_media_period: 604_800,
        tmp_sessions: None,
        call_receive_timeout_ms: 20_000,
        call_ring_timeout_ms: 90_000,
        call_connect_timeout_ms: 30_000,
        call_packet_timeout_ms: 10_000,
        me_url_prefix: "https://t.me/".to_owned(),
        autoupdate_url_prefix: None,
        gif_search_username: None,
        venue_search_username: None,
        img_search_username: None,
        static_maps_provider: None,
        caption_length_max: 1024,
        message_length_max: 4096,
        webfile_dc_id: 4,
        suggested_lang_code: None,
        lang_pack_version: None,
        base_lang_pack_version: None,
        reactions_default: None,
        autologin_token: None,
    }
    .into()
}
