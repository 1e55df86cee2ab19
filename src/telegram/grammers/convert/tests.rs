use super::*;
use grammers_client::sender::RpcError;
use std::num::NonZeroU32;

fn rpc(code: i32, name: &str, value: Option<u32>) -> InvocationError {
    InvocationError::Rpc(RpcError {
        code,
        name: name.into(),
        value,
        caused_by: None,
    })
}

fn io() -> InvocationError {
    InvocationError::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "read 0 bytes",
    ))
}

fn ctx(error: InvocationError, fail_count: u32) -> RetryContext {
    RetryContext {
        fail_count: NonZeroU32::new(fail_count).unwrap(),
        slept_so_far: Duration::ZERO,
        error,
    }
}

fn raw_message(id: i32, peer: tl::enums::Peer, out: bool, text: &str) -> tl::types::Message {
    tl::types::Message {
        out,
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
        id,
        from_id: None,
        from_boosts_applied: None,
        from_rank: None,
        peer_id: peer,
        saved_peer_id: None,
        fwd_from: None,
        via_bot_id: None,
        via_business_bot_id: None,
        guestchat_via_from: None,
        reply_to: None,
        date: 1_700_000_000,
        message: text.into(),
        media: None,
        reply_markup: None,
        entities: None,
        views: None,
        forwards: None,
        replies: None,
        edit_date: None,
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
}

fn user_peer(id: i64) -> tl::enums::Peer {
    tl::enums::Peer::User(tl::types::PeerUser { user_id: id })
}

#[test]
fn flood_waits_come_back_at_once_and_one_io_error_is_retried() {
    let policy = NoFloodSleep;
    assert!(
        policy
            .should_retry(&ctx(rpc(420, "FLOOD_WAIT", Some(3)), 1))
            .is_break()
    );
    assert!(
        policy
            .should_retry(&ctx(rpc(420, "SLOWMODE_WAIT", Some(3)), 1))
            .is_break()
    );
    assert_eq!(
        policy.should_retry(&ctx(io(), 1)),
        ControlFlow::Continue(IO_RETRY_DELAY)
    );
    assert!(policy.should_retry(&ctx(io(), 2)).is_break());
    assert!(
        policy
            .should_retry(&ctx(InvocationError::Dropped("x"), 1))
            .is_break()
    );
    assert!(
        policy
            .should_retry(&ctx(rpc(500, "INTERNAL", None), 1))
            .is_break()
    );
}

#[test]
fn errors_map_to_what_tgvisor_acts_on() {
    assert_eq!(
        map_error(&rpc(420, "FLOOD_WAIT", Some(31)), Some(5)),
        TgError::FloodWait {
            seconds: 31,
            scope: FloodScope::Account
        }
    );
    assert_eq!(
        map_error(&rpc(420, "FLOOD_PREMIUM_WAIT", Some(2)), None),
        TgError::FloodWait {
            seconds: 2,
            scope: FloodScope::Account
        }
    );
    assert_eq!(
        map_error(&rpc(420, "SLOWMODE_WAIT", Some(10)), Some(-100123)),
        TgError::FloodWait {
            seconds: 10,
            scope: FloodScope::Chat { chat_id: -100123 }
        }
    );
    assert_eq!(
        map_error(&rpc(401, "AUTH_KEY_UNREGISTERED", None), None),
        TgError::Unauthorized
    );
    assert_eq!(
        map_error(&rpc(401, "SESSION_REVOKED", None), None),
        TgError::Revoked
    );
    assert!(matches!(map_error(&io(), None), TgError::Network(_)));
    assert!(matches!(
        map_error(&InvocationError::Dropped("runner gone"), None),
        TgError::Network(_)
    ));
    assert_eq!(
        map_error(
            &InvocationError::Transport(TransportError::BadStatus { status: 404 }),
            None
        ),
        TgError::Unauthorized
    );
    assert!(matches!(
        map_error(
            &InvocationError::Transport(TransportError::BadStatus { status: 429 }),
            None
        ),
        TgError::Network(_)
    ));
    assert!(matches!(
        map_error(
            &InvocationError::Deserialize(grammers_mtproto::mtp::DeserializeError::BadMessageId {
                got: 1
            }),
            None
        ),
        TgError::Other { code: 0, .. }
    ));
}

#[test]
fn network_errors_do_not_leak_internals() {
    let TgError::Network(text) = map_error(&io(), None) else {
        panic!()
    };
    assert!(!text.contains("read 0 bytes"), "{text}");
}

#[test]
fn messages_convert_with_sender_chat_reply_and_media() {
    // Incoming private message: the chat is the other user, who sent it.
    let m = raw_message(7, user_peer(1_000_001), false, "hi");
    let got = message(&tl::enums::Message::Message(m), Some(42)).unwrap();
    assert_eq!(got.id, 7);
    assert_eq!(got.chat_id, 1_000_001);
    assert_eq!(got.sender_id, Some(1_000_001));
    assert!(!got.outgoing);
    assert_eq!(got.text, "hi");
    assert_eq!(got.date.timestamp(), 1_700_000_000);

    // Outgoing with a reply and a document.
    let mut m = raw_message(8, user_peer(1_000_001), true, "file");
    m.reply_to = Some(tl::enums::MessageReplyHeader::Header(
        tl::types::MessageReplyHeader {
            reply_to_scheduled: false,
            forum_topic: false,
            quote: false,
            reply_to_ephemeral: false,
            reply_to_msg_id: Some(7),
            reply_to_peer_id: None,
            reply_from: None,
            reply_media: None,
            reply_to_top_id: None,
            quote_text: None,
            quote_entities: None,
            quote_offset: None,
            todo_item_id: None,
            poll_option: None,
        },
    ));
    m.media = Some(tl::enums::MessageMedia::Document(
        tl::types::MessageMediaDocument {
            nopremium: false,
            spoiler: false,
            video: false,
            round: false,
            voice: false,
            document: Some(tl::enums::Document::Document(tl::types::Document {
                id: 1,
                access_hash: 2,
                file_reference: vec![],
                date: 0,
                mime_type: "text/plain".into(),
                size: 1234,
                thumbs: None,
                video_thumbs: None,
                dc_id: 2,
                attributes: vec![tl::enums::DocumentAttribute::Filename(
                    tl::types::DocumentAttributeFilename {
                        file_name: "a.txt".into(),
                    },
                )],
            })),
            alt_documents: None,
            video_cover: None,
            video_timestamp: None,
            ttl_seconds: None,
        },
    ));
    m.edit_date = Some(1_700_000_100);
    let got = message(&tl::enums::Message::Message(m), Some(42)).unwrap();
    assert_eq!(got.sender_id, Some(42));
    assert!(got.outgoing);
    assert_eq!(got.reply_to, Some(7));
    assert_eq!(got.edit_date.unwrap().timestamp(), 1_700_000_100);
    assert_eq!(
        got.media,
        Some(MediaInfo {
            kind: MediaKind::Document,
            name: Some("a.txt".into()),
            size: 1234
        })
    );

    // Group message from someone: the chat is the group.
    let mut m = raw_message(
        9,
        tl::enums::Peer::Chat(tl::types::PeerChat { chat_id: 55 }),
        false,
        "g",
    );
    m.from_id = Some(user_peer(77));
    let got = message(&tl::enums::Message::Message(m), Some(42)).unwrap();
    assert_eq!((got.chat_id, got.sender_id), (-55, Some(77)));

    assert!(
        message(
            &tl::enums::Message::Empty(tl::types::MessageEmpty {
                id: 1,
                peer_id: None
            }),
            None
        )
        .is_none()
    );
}

#[test]
fn updates_convert_and_others_are_skipped() {
    let new = tl::enums::Update::NewMessage(tl::types::UpdateNewMessage {
        message: tl::enums::Message::Message(raw_message(3, user_peer(5), false, "x")),
        pts: 1,
        pts_count: 1,
    });
    assert!(matches!(update(&new, Some(1)), Some(Update::NewMessage(m)) if m.id == 3));
    let edit = tl::enums::Update::EditMessage(tl::types::UpdateEditMessage {
        message: tl::enums::Message::Message(raw_message(3, user_peer(5), false, "y")),
        pts: 2,
        pts_count: 1,
    });
    assert!(matches!(update(&edit, Some(1)), Some(Update::MessageEdited(m)) if m.text == "y"));
    let del = tl::enums::Update::DeleteChannelMessages(tl::types::UpdateDeleteChannelMessages {
        channel_id: 123,
        messages: vec![1, 2],
        pts: 3,
        pts_count: 2,
    });
    assert_eq!(
        update(&del, None),
        Some(Update::MessagesDeleted {
            chat_id: Some(-1_000_000_000_123),
            ids: vec![1, 2]
        })
    );
    let del = tl::enums::Update::DeleteMessages(tl::types::UpdateDeleteMessages {
        messages: vec![4],
        pts: 3,
        pts_count: 1,
    });
    assert_eq!(
        update(&del, None),
        Some(Update::MessagesDeleted {
            chat_id: None,
            ids: vec![4]
        })
    );
    let id = tl::enums::Update::MessageId(tl::types::UpdateMessageId {
        id: 1,
        random_id: 2,
    });
    assert_eq!(update(&id, None), None);
}

#[test]
fn the_sent_message_is_found_by_its_random_id() {
    let mk = |id, text: &str| {
        tl::enums::Update::NewMessage(tl::types::UpdateNewMessage {
            message: tl::enums::Message::Message(raw_message(id, user_peer(5), true, text)),
            pts: id,
            pts_count: 1,
        })
    };
    let updates = tl::enums::Updates::Updates(tl::types::Updates {
        updates: vec![
            mk(10, "other"),
            tl::enums::Update::MessageId(tl::types::UpdateMessageId {
                id: 11,
                random_id: 777,
            }),
            mk(11, "mine"),
        ],
        users: vec![],
        chats: vec![],
        date: 0,
        seq: 0,
    });
    let got = sent_message(&updates, 777, Some(1), |_| unreachable!()).unwrap();
    assert_eq!((got.id, got.text.as_str()), (11, "mine"));

    let short = tl::enums::Updates::UpdateShortSentMessage(tl::types::UpdateShortSentMessage {
        out: true,
        id: 12,
        pts: 1,
        pts_count: 1,
        date: 5,
        media: None,
        entities: None,
        ttl_period: None,
    });
    let got = sent_message(&short, 1, Some(1), |s| Message {
        id: s.id,
        chat_id: 5,
        sender_id: Some(1),
        outgoing: true,
        text: "t".into(),
        date: timestamp(s.date),
        reply_to: None,
        edit_date: None,
        media: None,
    })
    .unwrap();
    assert_eq!(got.id, 12);
}

#[test]
fn peers_are_cached_with_dialog_ids_and_input_peers_built_from_them() {
    let users = [tl::enums::User::User(tl::types::User {
        id: 9,
        access_hash: Some(99),
        first_name: Some("Ann".into()),
        last_name: Some("Lee".into()),
        username: Some("ann".into()),
        ..empty_user()
    })];
    let p: Vec<_> = users_to_peers(&users).collect();
    assert_eq!(p[0].id, 9);
    assert_eq!(p[0].title, "Ann Lee");
    assert_eq!(
        input_peer(&p[0], Some(1)),
        Some(tl::enums::InputPeer::User(tl::types::InputPeerUser {
            user_id: 9,
            access_hash: 99
        }))
    );
    assert_eq!(
        input_peer(&p[0], Some(9)),
        Some(tl::enums::InputPeer::PeerSelf)
    );
    let channel = StoredPeer {
        id: -1_000_000_000_123,
        hash: None,
        title: String::new(),
        username: None,
        bot: None,
        megagroup: None,
    };
    assert_eq!(input_peer(&channel, None), None, "a channel needs its hash");
    assert_eq!(
        dialog_id(&tl::enums::Peer::Channel(tl::types::PeerChannel {
            channel_id: 123
        })),
        Some(-1_000_000_000_123)
    );
}

fn empty_user() -> tl::types::User {
    tl::types::User {
        is_self: false,
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
        premium: false,
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
        id: 0,
        access_hash: None,
        first_name: None,
        last_name: None,
        username: None,
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
}
