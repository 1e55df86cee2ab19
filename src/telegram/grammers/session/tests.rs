use super::*;
use crate::sessions::data::FORMAT_VERSION;
use crate::sessions::{AuthKey, DcEntry, SessionData};
use crate::telegram::SessionSink;
use crate::telegram::grammers::peers::{PEER_CACHE_LIMIT, StoredPeer};
use async_trait::async_trait;
use grammers_session::Session;
use grammers_session::types::{ChannelState, PeerAuth, PeerId, PeerInfo, UpdateState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Records every save; can be told to fail.
#[derive(Default)]
struct RecordingSink {
    saves: Mutex<Vec<SessionData>>,
    fail: AtomicBool,
    notify: tokio::sync::Notify,
}

#[async_trait]
impl SessionSink for RecordingSink {
    async fn save(&self, data: &SessionData) -> anyhow::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            anyhow::bail!("store down");
        }
        self.saves.lock().unwrap().push(data.clone());
        self.notify.notify_waiters();
        Ok(())
    }
}

impl RecordingSink {
    fn count(&self) -> usize {
        self.saves.lock().unwrap().len()
    }
    fn last(&self) -> SessionData {
        self.saves.lock().unwrap().last().cloned().unwrap()
    }
    async fn wait_for(&self, n: usize) {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let notified = self.notify.notified();
                if self.count() >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .expect("the writer saved in time");
    }
}

fn key(seed: u8) -> [u8; 256] {
    let mut k = [0u8; 256];
    for (i, b) in k.iter_mut().enumerate() {
        *b = seed.wrapping_add(i as u8);
    }
    k
}

fn stored(dc: i32, user: Option<i64>) -> SessionData {
    let mut data = SessionData::single_dc(DcEntry {
        id: dc,
        ipv4: Some("127.0.0.1:4000".parse().unwrap()),
        ipv6: None,
        auth_key: Some(AuthKey::new(key(7))),
    });
    data.user_id = user;
    data
}

fn peer(id: i64, title: &str) -> StoredPeer {
    StoredPeer {
        id,
        hash: Some(id * 10),
        title: title.into(),
        username: None,
        bot: Some(false),
        megagroup: None,
    }
}

#[test]
fn serves_dcs_and_keys_from_the_stored_session_and_snapshots_them_back() {
    let data = stored(2, Some(42));
    let s = TgSession::from_data(&data);
    assert_eq!(s.home_dc_id().unwrap(), 2);
    let dc = s.dc_option(2).unwrap().unwrap();
    assert_eq!(dc.auth_key, Some(key(7)));
    assert_eq!(dc.ipv4.to_string(), "127.0.0.1:4000");
    assert!(s.dc_option(4).unwrap().is_none());
    let snap = s.snapshot();
    assert_eq!(snap.home_dc, 2);
    assert_eq!(snap.user_id, Some(42));
    assert_eq!(snap.dcs.len(), 1);
    assert_eq!(snap.dcs[0].ipv4, data.dcs[0].ipv4);
    assert_eq!(
        snap.dcs[0].ipv6, None,
        "a mapped v6 address is not invented"
    );
    assert_eq!(snap.dcs[0].auth_key.as_ref().unwrap().expose(), &key(7));
    assert_eq!(snap.version, FORMAT_VERSION);
}

#[actix_rt::test]
async fn backend_state_round_trips_update_state_and_peers() {
    let s = TgSession::from_data(&stored(2, Some(42)));
    let _ = s
        .set_update_state(UpdateState::All(UpdatesState {
            pts: 10,
            qts: 2,
            date: 1000,
            seq: 3,
            channels: vec![ChannelState { id: 77, pts: 5 }],
        }))
        .await;
    s.remember([peer(1_000_001, "Echo"), peer(-1000000000077, "A channel")]);
    let snap = s.snapshot();
    let state: BackendState = serde_json::from_value(snap.backend_state.clone().unwrap()).unwrap();
    assert_eq!(state.v, BACKEND_STATE_VERSION);
    assert_eq!(
        state.updates,
        Some(StoredUpdates {
            pts: 10,
            qts: 2,
            date: 1000,
            seq: 3,
            channels: vec![(77, 5)]
        })
    );
    assert_eq!(state.peers.len(), 2);

    let again = TgSession::from_data(&snap);
    let u = again.updates_state().await.unwrap();
    assert_eq!((u.pts, u.qts, u.date, u.seq), (10, 2, 1000, 3));
    assert_eq!(u.channels, vec![ChannelState { id: 77, pts: 5 }]);
    assert_eq!(again.cached_peer(1_000_001).unwrap().title, "Echo");
    // grammers sees the access hash.
    let info = again.peer(PeerId::user(1_000_001).unwrap()).await.unwrap();
    assert_eq!(
        info.and_then(|i| i.auth()).map(PeerAuth::hash),
        Some(10_000_010)
    );
}

#[test]
fn unknown_backend_state_versions_are_ignored() {
    let mut data = stored(2, None);
    data.backend_state = Some(serde_json::json!({"v": 99, "peers": [{"id": 5}]}));
    let s = TgSession::from_data(&data);
    assert!(s.cached_peer(5).is_none());
    data.backend_state = Some(serde_json::json!("garbage"));
    let s = TgSession::from_data(&data);
    assert_eq!(s.snapshot().home_dc, 2);
}

#[actix_rt::test]
async fn the_self_user_is_answered_for_grammers_and_cached_when_grammers_says_so() {
    let s = TgSession::from_data(&stored(2, None));
    assert!(s.peer(PeerId::self_user()).await.unwrap().is_none());
    let _ = s
        .cache_peer(PeerInfo::User {
            id: 42,
            auth: Some(PeerAuth::from_hash(99)),
            bot: Some(false),
            is_self: Some(true),
        })
        .await;
    assert_eq!(s.user_id(), Some(42));
    let me = s.peer(PeerId::self_user()).await.unwrap().unwrap();
    assert!(matches!(
        me,
        PeerInfo::User {
            id: 42,
            is_self: Some(true),
            ..
        }
    ));
    assert_eq!(me.auth().map(PeerAuth::hash), Some(99));
    assert_eq!(s.cached_peer(42).unwrap().hash, Some(99));
}

#[test]
fn the_peer_cache_is_bounded_and_keeps_the_recent_peers() {
    let s = TgSession::from_data(&stored(2, Some(1)));
    for i in 0..(PEER_CACHE_LIMIT as i64 + 500) {
        s.remember([peer(1000 + i, "p")]);
        // An old peer seen again stays.
        if i % 100 == 0 {
            s.remember([peer(1000, "first")]);
        }
    }
    let len = s.lock().peers.len();
    assert!(len <= PEER_CACHE_LIMIT, "{len}");
    assert!(len >= PEER_CACHE_LIMIT - PEER_CACHE_LIMIT / 10);
    assert!(s.cached_peer(1001).is_none(), "the oldest went");
    assert_eq!(s.cached_peer(1000).unwrap().title, "first");
    assert!(
        s.cached_peer(1000 + PEER_CACHE_LIMIT as i64 + 499)
            .is_some()
    );
    let stored: BackendState = serde_json::from_value(s.snapshot().backend_state.unwrap()).unwrap();
    assert!(stored.peers.len() <= PEER_CACHE_LIMIT);
}

#[test]
fn merging_keeps_what_the_newer_sighting_lacks() {
    let s = TgSession::from_data(&stored(2, Some(1)));
    s.remember([StoredPeer {
        username: Some("echo".into()),
        ..peer(7, "Echo")
    }]);
    // grammers' own cache call carries no title or username.
    let _ = futures_util::FutureExt::now_or_never(s.cache_peer(PeerInfo::User {
        id: 7,
        auth: Some(PeerAuth::from_hash(5)),
        bot: None,
        is_self: None,
    }));
    let p = s.cached_peer(7).unwrap();
    assert_eq!(
        (p.title.as_str(), p.username.as_deref(), p.hash),
        ("Echo", Some("echo"), Some(5))
    );
}

fn state(pts: i32) -> UpdatesState {
    UpdatesState {
        pts,
        qts: 0,
        date: 100,
        seq: 0,
        channels: vec![ChannelState { id: 9, pts: 4 }],
    }
}

#[actix_rt::test]
async fn once_armed_grammers_update_state_is_kept_apart_from_the_blob() {
    let s = TgSession::from_data(&stored(2, Some(1)));
    // Before arming (a sign-in, a first getState): where updates start.
    let _ = s.set_update_state(UpdateState::All(state(5))).await;
    assert_eq!(s.start_state().pts, 5);
    assert_eq!(s.live_update_state(), None);
    s.arm();
    // Armed: grammers' state moves on, the blob's start does not.
    let _ = s.set_update_state(UpdateState::All(state(9))).await;
    let _ = s
        .set_update_state(UpdateState::Channel { id: 9, pts: 6 })
        .await;
    let live = s.live_update_state().unwrap();
    assert_eq!((live.pts, live.channels.clone()), (9, vec![(9, 6)]));
    let blob: BackendState = serde_json::from_value(s.snapshot().backend_state.unwrap()).unwrap();
    assert_eq!(blob.updates.unwrap().pts, 5);
    assert_eq!(updates_of(&s).await.pts, 5, "grammers loads the start");
}

#[actix_rt::test]
async fn a_stored_state_replaces_the_blobs_as_the_start() {
    let s = TgSession::from_data(&stored(2, Some(1)));
    s.resume_from(&crate::telegram::UpdateState {
        pts: 40,
        qts: 1,
        date: 7,
        seq: 2,
        channels: vec![(9, 3)],
    });
    let u = updates_of(&s).await;
    assert_eq!((u.pts, u.qts, u.date, u.seq), (40, 1, 7, 2));
    assert_eq!(u.channels, vec![ChannelState { id: 9, pts: 3 }]);
    assert_eq!(s.start_state().channels, vec![(9, 3)]);
}

async fn updates_of(s: &TgSession) -> UpdatesState {
    s.updates_state().await.unwrap()
}

#[test]
fn debug_never_shows_keys() {
    let s = TgSession::from_data(&stored(2, Some(1)));
    let text = format!("{s:?}");
    assert!(!text.contains("auth_key"), "{text}");
    assert!(!text.contains(&format!("{:?}", &key(7)[..8])), "{text}");
}

#[actix_rt::test]
async fn nothing_is_written_before_arming() {
    let s = TgSession::from_data(&stored(2, None));
    let sink = Arc::new(RecordingSink::default());
    let _w = s.spawn_writer(sink.clone(), Duration::from_millis(10));
    let _ = s.set_home_dc_id(4).await;
    tokio::task::yield_now().await;
    // The flush cannot complete either: it times out rather than hangs.
    assert_eq!(
        s.flush(Duration::from_millis(50)).await,
        Err(FlushError::TimedOut)
    );
    assert_eq!(sink.count(), 0);
    s.arm();
    sink.wait_for(1).await;
    assert_eq!(sink.last().home_dc, 4);
}

#[actix_rt::test]
async fn durable_changes_are_written_through_and_the_live_update_state_never() {
    let s = TgSession::from_data(&stored(2, Some(1)));
    let sink = Arc::new(RecordingSink::default());
    // A tick far away: only requests and flushes write.
    let _w = s.spawn_writer(sink.clone(), Duration::from_secs(3600));
    s.arm();
    let mut dc = s.dc_option(2).unwrap().unwrap();
    dc.auth_key = Some(key(9));
    let _ = s.set_dc_option(&dc).await;
    sink.wait_for(1).await;
    assert_eq!(
        sink.last().dcs[0].auth_key.as_ref().unwrap().expose(),
        &key(9)
    );
    let n = sink.count();

    let _ = s.set_update_state(UpdateState::All(state(12))).await;
    s.flush(Duration::from_secs(5)).await.unwrap();
    assert_eq!(sink.count(), n, "the live update state is not a change");
    s.remember([peer(5, "p")]);
    s.flush(Duration::from_secs(5)).await.unwrap();
    let blob: BackendState = serde_json::from_value(sink.last().backend_state.unwrap()).unwrap();
    assert_eq!(blob.updates, None, "nor is it saved with one");
}

#[actix_rt::test]
async fn the_tick_tries_a_failed_write_again() {
    let s = TgSession::from_data(&stored(2, Some(1)));
    let sink = Arc::new(RecordingSink::default());
    let _w = s.spawn_writer(sink.clone(), Duration::from_millis(20));
    s.arm();
    sink.fail.store(true, Ordering::SeqCst);
    let _ = s.set_home_dc_id(3).await;
    assert_eq!(
        s.flush(Duration::from_secs(5)).await,
        Err(FlushError::WriteFailed)
    );
    sink.fail.store(false, Ordering::SeqCst);
    // No flush, no new change: the tick writes it.
    sink.wait_for(1).await;
    assert_eq!(sink.last().home_dc, 3);
}

#[actix_rt::test]
async fn a_failed_write_is_reported_and_retried() {
    let s = TgSession::from_data(&stored(2, Some(1)));
    let sink = Arc::new(RecordingSink::default());
    let _w = s.spawn_writer(sink.clone(), Duration::from_secs(3600));
    s.arm();
    sink.fail.store(true, Ordering::SeqCst);
    let _ = s.set_home_dc_id(3).await;
    assert_eq!(
        s.flush(Duration::from_secs(5)).await,
        Err(FlushError::WriteFailed)
    );
    sink.fail.store(false, Ordering::SeqCst);
    s.flush(Duration::from_secs(5)).await.unwrap();
    assert_eq!(sink.last().home_dc, 3);
}

#[actix_rt::test]
async fn writes_are_ordered_and_coalesced() {
    let s = TgSession::from_data(&stored(2, Some(1)));
    let sink = Arc::new(RecordingSink::default());
    let _w = s.spawn_writer(sink.clone(), Duration::from_secs(3600));
    s.arm();
    for i in 0..200 {
        s.remember([peer(5000 + i, "p")]);
    }
    s.flush(Duration::from_secs(5)).await.unwrap();
    let saves = sink.saves.lock().unwrap().clone();
    assert!(saves.len() < 200, "coalesced: {} writes", saves.len());
    let counts: Vec<usize> = saves
        .iter()
        .map(|d| {
            serde_json::from_value::<BackendState>(d.backend_state.clone().unwrap())
                .unwrap()
                .peers
                .len()
        })
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert_eq!(*counts.last().unwrap(), 200);
}

#[test]
fn a_fresh_session_knows_telegrams_dcs_without_keys() {
    let s = TgSession::fresh();
    let home = s.home_dc_id().unwrap();
    let dc = s.dc_option(home).unwrap().unwrap();
    assert!(dc.auth_key.is_none());
    assert!(!dc.ipv4.ip().is_unspecified());
    assert_eq!(s.snapshot().dcs.len(), 5);
}
