use super::peers::{StoredPeer, to_port_peer};
use super::pool::panic_text;
use super::requests::{input_media, mime_for};
use super::*;
use crate::sessions::{AuthKey, DcEntry};
use crate::telegram::{MediaKind, PeerKind, UploadedFile};

struct NoSink;

#[async_trait]
impl SessionSink for NoSink {
    async fn save(&self, _: &SessionData) -> anyhow::Result<()> {
        Ok(())
    }
}

fn settings() -> TelegramSettings {
    TelegramSettings {
        backend: crate::config::TelegramBackend::Grammers,
        api_id: 12345,
        api_hash: Some(SecretString::from("0123456789abcdef0123456789abcdef")),
        client_pool_size: 1,
        max_clients_per_user: 0,
        health_check_interval_ms: Duration::from_millis(60_000),
        session_rotation_interval_ms: Duration::from_millis(0),
        max_session_age_ms: Duration::from_millis(0),
        session_error_threshold: 3,
        request_timeout_ms: Duration::from_millis(2_000),
        update_state_sync_interval_ms: Duration::from_millis(1_000),
        pending_login_ttl_ms: Duration::from_millis(60_000),
        max_pending_logins: 10,
        max_pending_logins_per_user: 2,
        login_attempts: 3,
        account_restarts: crate::config::AccountRestartSettings {
            max_restarts: 10,
            period_ms: Duration::from_millis(600_000),
            backoff_base_ms: Duration::from_millis(1000),
            backoff_cap_ms: Duration::from_millis(60_000),
        },
    }
}

fn file(big: bool) -> UploadedFile {
    UploadedFile {
        file_id: 5,
        parts: 3,
        name: "report.pdf".into(),
        size: 1_200_000,
        big,
    }
}

#[test]
fn uploaded_files_become_input_media_of_the_right_kind() {
    let media = input_media(&file(false), MediaKind::Document).unwrap();
    let tl::enums::InputMedia::UploadedDocument(d) = media else {
        panic!("{media:?}")
    };
    assert_eq!(d.mime_type, "application/pdf");
    assert!(matches!(
        d.file,
        tl::enums::InputFile::File(tl::types::InputFile {
            id: 5,
            parts: 3,
            ..
        })
    ));
    assert!(matches!(
        &d.attributes[..],
        [tl::enums::DocumentAttribute::Filename(f)] if f.file_name == "report.pdf"
    ));
    let media = input_media(&file(true), MediaKind::Photo).unwrap();
    let tl::enums::InputMedia::UploadedPhoto(p) = media else {
        panic!("{media:?}")
    };
    assert!(matches!(
        p.file,
        tl::enums::InputFile::Big(tl::types::InputFileBig {
            id: 5,
            parts: 3,
            ..
        })
    ));
    assert_eq!(mime_for("X.JPG"), "image/jpeg");
    assert_eq!(mime_for("noext"), "application/octet-stream");
}

#[test]
fn cached_peers_become_port_peers() {
    let p = StoredPeer {
        id: -1_000_000_000_123,
        hash: Some(1),
        title: "News".into(),
        username: Some("news".into()),
        bot: None,
        megagroup: Some(false),
    };
    let peer = to_port_peer(&p, Some(1)).unwrap();
    assert_eq!(peer.kind, PeerKind::Channel);
    assert_eq!(peer.title, "News");
    let group = StoredPeer {
        megagroup: Some(true),
        ..p
    };
    assert_eq!(to_port_peer(&group, None).unwrap().kind, PeerKind::Group);
    let me = StoredPeer {
        id: 42,
        hash: None,
        title: "Ann".into(),
        username: None,
        bot: None,
        megagroup: None,
    };
    let peer = to_port_peer(&me, Some(42)).unwrap();
    assert_eq!(
        (peer.kind, peer.title.as_str()),
        (PeerKind::SelfChat, "Saved Messages")
    );
}

#[test]
fn the_backend_debug_hides_the_api_hash() {
    let b = GrammersBackend::new(&settings());
    assert_eq!(b.name(), "grammers");
    let text = format!("{b:?}");
    assert!(!text.contains("0123456789abcdef"), "{text}");
    assert!(text.contains("[redacted]"));
}

#[test]
fn panic_payloads_become_text() {
    assert_eq!(panic_text(&"boom"), "boom");
    assert_eq!(panic_text(&String::from("bang")), "bang");
    assert_eq!(panic_text(&5u8), "unknown panic");
}

#[actix_rt::test]
async fn a_session_without_a_key_is_unauthorized_without_dialling() {
    let b = GrammersBackend::new(&settings());
    let mut data = SessionData::single_dc(DcEntry {
        id: 2,
        ipv4: Some("127.0.0.1:1".parse().unwrap()),
        ipv6: None,
        auth_key: None,
    });
    data.user_id = Some(1);
    let err = b.connect(data, None, Arc::new(NoSink)).await.err().unwrap();
    assert_eq!(err, TgError::Unauthorized);
}

#[actix_rt::test]
async fn an_unreachable_dc_is_a_network_error_at_connect() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let b = GrammersBackend::new(&settings());
    let data = SessionData::single_dc(DcEntry {
        id: 2,
        ipv4: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        ipv6: None,
        auth_key: Some(AuthKey::new([3u8; 256])),
    });
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        b.connect(data, None, Arc::new(NoSink)),
    )
    .await
    .expect("connect gave up in time")
    .err()
    .unwrap();
    assert!(matches!(err, TgError::Network(_)), "{err:?}");
}

#[actix_rt::test]
async fn the_pool_watch_reports_the_runner_ending() {
    let session = TgSession::fresh();
    let pool = start_pool(session, 1);
    let mut dead = pool.dead.clone();
    assert!(dead.borrow().is_none());
    pool.handle.quit();
    let reason = tokio::time::timeout(Duration::from_secs(5), dead.wait_for(Option::is_some))
        .await
        .expect("the runner ended")
        .unwrap()
        .clone();
    assert!(matches!(reason, Some(TgError::Network(_))), "{reason:?}");
}
