//! An account's stored update state on the real database: committed in the
//! transaction of the events its updates produced, never moved back, gone
//! with its account; and the update pump that feeds it.

use crate::helpers::spawn_app;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set};
use serde_json::json;
use std::time::Duration;
use tgvisor::accounts::update_state;
use tgvisor::accounts::updates::Pump;
use tgvisor::entities::{account, user};
use tgvisor::events::{Dedupe, StoredEvent, TopicWriter, account_topic, since};
use tgvisor::telegram::metrics::TelegramMetrics;
use tgvisor::telegram::{Incoming, Message, Update, UpdateState};
use tokio::sync::mpsc;

/// A user with one account, inserted directly; answers the account id.
async fn account_row(db: &DatabaseConnection) -> i64 {
    let now = chrono::Utc::now().fixed_offset();
    let owner = user::ActiveModel {
        username: Set("owner".into()),
        username_key: Set("owner".into()),
        email: Set("owner@example.com".into()),
        email_key: Set("owner@example.com".into()),
        password_hash: Set("x".into()),
        role: Set("user".into()),
        token_version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    account::ActiveModel {
        user_id: Set(owner.id),
        phone_digest: Set("digest".into()),
        phone_hint: Set("+*****00".into()),
        telegram_user_id: Set(None),
        state: Set("connected".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
    .id
}

fn state(pts: i32) -> UpdateState {
    UpdateState {
        pts,
        qts: 1,
        date: 1000 + pts,
        seq: 2,
        channels: vec![(5, pts)],
    }
}

fn message(id: i32) -> Message {
    Message {
        id,
        chat_id: 7,
        sender_id: Some(7),
        outgoing: false,
        text: format!("m{id}"),
        date: chrono::Utc::now(),
        reply_to: None,
        edit_date: None,
        media: None,
    }
}

async fn publish(writer: &TopicWriter, id: i32, checkpoint: Option<(i64, UpdateState)>) {
    writer
        .publish_deduped(
            "message.new",
            json!({ "message": { "id": id, "chat_id": 7 } }),
            Dedupe::new(7, "new", vec![i64::from(id)]),
            checkpoint.map(|(account, s)| update_state::write(account, s)),
        )
        .await
        .unwrap();
}

#[actix_rt::test]
async fn the_state_commits_with_its_events_and_never_moves_back() {
    let app = spawn_app().await;
    let db = app.db_conn().await;
    let id = account_row(&db).await;
    let writer = app.events.writer(&account_topic(id));

    publish(&writer, 1, Some((id, state(10)))).await;
    writer.flush().await.unwrap();
    assert_eq!(update_state::load(&db, id).await.unwrap(), Some(state(10)));

    // A checkpoint behind it (an earlier connection's pump finishing late)
    // moves nothing back; a channel it adds is kept.
    let behind = UpdateState {
        pts: 8,
        qts: 0,
        date: 1,
        seq: 0,
        channels: vec![(5, 3), (6, 1)],
    };
    writer
        .checkpoint(update_state::write(id, behind))
        .await
        .unwrap();
    writer.flush().await.unwrap();
    let stored = update_state::load(&db, id).await.unwrap().unwrap();
    assert_eq!(
        stored,
        UpdateState {
            channels: vec![(5, 10), (6, 1)],
            ..state(10)
        }
    );

    // A repeat is dropped, and the state it came with is still stored.
    publish(&writer, 1, Some((id, state(11)))).await;
    writer.flush().await.unwrap();
    assert_eq!(
        since(&db, &account_topic(id), 0, 10).await.unwrap().len(),
        1
    );
    assert_eq!(update_state::load(&db, id).await.unwrap().unwrap().pts, 11);

    // Of several checkpoints queued together, the furthest one stands.
    for pts in 12..=20 {
        publish(&writer, pts, Some((id, state(pts)))).await;
    }
    writer.flush().await.unwrap();
    assert_eq!(update_state::load(&db, id).await.unwrap().unwrap().pts, 20);

    // The state goes with its account.
    account::Entity::delete_by_id(id).exec(&db).await.unwrap();
    assert_eq!(update_state::load(&db, id).await.unwrap(), None);
    app.stop().await;
}

#[actix_rt::test]
async fn a_checkpoint_for_a_removed_account_does_not_stop_its_writer() {
    let app = spawn_app().await;
    let db = app.db_conn().await;
    let gone = 424_242;
    let writer = app.events.writer(&account_topic(gone));
    publish(&writer, 1, Some((gone, state(3)))).await;
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        writer.append("test.tick", json!({})),
    )
    .await
    .expect("the writer goes on")
    .unwrap();
    assert_eq!(update_state::load(&db, gone).await.unwrap(), None);
    let events = since(&db, &account_topic(gone), 0, 10).await.unwrap();
    assert_eq!(events.last().map(|e| e.offset), Some(next.offset));
    assert_eq!(events.len(), 2);
    app.stop().await;
}

/// Waits until the log holds `n` events on `topic` (bounded).
async fn wait_events(db: &DatabaseConnection, topic: &str, n: usize) -> Vec<StoredEvent> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let events = since(db, topic, 0, 100).await.unwrap();
            if events.len() >= n {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("fewer than {n} events on {topic}"))
}

/// Waits until the stored state's pts is `pts` (bounded).
async fn wait_pts(db: &DatabaseConnection, account: i64, pts: i32) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let stored = update_state::load(db, account).await.unwrap();
            if stored.is_some_and(|s| s.pts == pts) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the stored pts never became {pts}"));
}

fn pump(app: &crate::helpers::TestApp, account: i64, quiet: Duration) -> Pump {
    Pump {
        account_id: account,
        writer: app.events.writer(&account_topic(account)),
        metrics: TelegramMetrics::new(&prometheus::Registry::new()).unwrap(),
        quiet_interval: quiet,
    }
}

fn quiet(pts: i32) -> Incoming {
    Incoming {
        update: None,
        state: Some(state(pts)),
    }
}

#[actix_rt::test]
async fn the_pump_stores_states_with_events_and_holds_the_quiet_ones() {
    let app = spawn_app().await;
    let db = app.db_conn().await;
    let id = account_row(&db).await;
    let topic = account_topic(id);
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(pump(&app, id, Duration::from_secs(3600)).run(rx));

    // The first state alone (a connection's start) is stored at once.
    tx.send(quiet(1)).await.unwrap();
    wait_pts(&db, id, 1).await;
    // A later one waits for the interval, or for an event's state.
    tx.send(quiet(2)).await.unwrap();
    // An update in the middle of a batch carries no state.
    tx.send(Incoming::update(Update::NewMessage(message(1))))
        .await
        .unwrap();
    wait_events(&db, &topic, 1).await;
    assert_eq!(update_state::load(&db, id).await.unwrap().unwrap().pts, 1);
    // The batch's last one does, and its event and state commit together.
    tx.send(Incoming {
        update: Some(Update::NewMessage(message(2))),
        state: Some(state(4)),
    })
    .await
    .unwrap();
    wait_events(&db, &topic, 2).await;
    assert_eq!(update_state::load(&db, id).await.unwrap().unwrap().pts, 4);
    // A quiet state held when the stream ends is stored then.
    tx.send(quiet(5)).await.unwrap();
    drop(tx);
    task.await.unwrap();
    app.events.writer(&topic).flush().await.unwrap();
    assert_eq!(update_state::load(&db, id).await.unwrap().unwrap().pts, 5);
    let events = since(&db, &topic, 0, 10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].data["account_id"], id);
    app.stop().await;
}

#[actix_rt::test]
async fn a_held_quiet_state_is_stored_once_the_interval_has_passed() {
    let app = spawn_app().await;
    let db = app.db_conn().await;
    let id = account_row(&db).await;
    let interval = Duration::from_millis(300);
    let (tx, rx) = mpsc::channel(16);
    let _task = tokio::spawn(pump(&app, id, interval).run(rx));

    tx.send(quiet(1)).await.unwrap();
    wait_pts(&db, id, 1).await;
    tx.send(quiet(2)).await.unwrap();
    tx.send(quiet(3)).await.unwrap();
    // The stream stays open and no event comes: only the interval stores
    // the last one.
    wait_pts(&db, id, 3).await;
    drop(tx);
    app.stop().await;
}
