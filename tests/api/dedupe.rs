//! The event log's dedupe keys on the real database (SQLite, or PostgreSQL
//! with `TGVISOR_TEST_DATABASE_URL`): a repeat of an announced change is
//! dropped without taking an offset, the key is enforced by the schema, and
//! the keys go with the events they announced.

use crate::helpers::spawn_app;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use serde_json::json;
use std::time::Duration;
use tgvisor::entities::event_key;
use tgvisor::events::{Dedupe, since};

fn new_message(id: i64) -> (serde_json::Value, Dedupe) {
    (
        json!({ "message": { "id": id, "chat_id": 7, "text": format!("m{id}") } }),
        Dedupe::new(7, "new", vec![id]),
    )
}

#[actix_rt::test]
async fn a_repeated_change_is_dropped_without_taking_an_offset() {
    let app = spawn_app().await;
    let db = app.db_conn().await;
    let topic = "account:901";
    let writer = app.events.writer(topic);

    for id in [1, 2, 1, 2, 1, 3] {
        let (data, keys) = new_message(id);
        writer
            .publish_deduped("message.new", data, keys, None)
            .await
            .unwrap();
    }
    let edits = [
        Dedupe::new(7, "edited:100:aaaa", vec![1]),
        Dedupe::new(7, "edited:100:bbbb", vec![1]),
        Dedupe::new(7, "edited:100:aaaa", vec![1]),
    ];
    for keys in edits {
        let data = json!({ "message": { "id": 1, "chat_id": 7 }, "v": keys.change });
        writer
            .publish_deduped("message.edited", data, keys, None)
            .await
            .unwrap();
    }
    // A deletion repeating some ids announces only the others.
    for ids in [vec![2], vec![1, 2, 3], vec![3, 2]] {
        let data = json!({ "chat_id": null, "message_ids": ids });
        writer
            .publish_deduped(
                "message.deleted",
                data,
                Dedupe::new(0, "deleted", ids),
                None,
            )
            .await
            .unwrap();
    }
    writer.flush().await.unwrap();

    let events = since(&db, topic, 0, 100).await.unwrap();
    let seen: Vec<(String, serde_json::Value)> = events
        .iter()
        .map(|e| {
            let what = match e.kind.as_str() {
                "message.new" => e.data["message"]["id"].clone(),
                "message.edited" => e.data["v"].clone(),
                _ => e.data["message_ids"].clone(),
            };
            (e.kind.clone(), what)
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("message.new".to_owned(), json!(1)),
            ("message.new".to_owned(), json!(2)),
            ("message.new".to_owned(), json!(3)),
            ("message.edited".to_owned(), json!("edited:100:aaaa")),
            ("message.edited".to_owned(), json!("edited:100:bbbb")),
            ("message.deleted".to_owned(), json!([2])),
            ("message.deleted".to_owned(), json!([1, 3])),
        ]
    );
    // No offset was taken by a dropped repeat: one writer, nothing else
    // appending, so the offsets follow each other.
    let offsets: Vec<i64> = events.iter().map(|e| e.offset).collect();
    assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "{offsets:?}");
    let next = writer.append("test.tick", json!({})).await.unwrap();
    assert_eq!(next.offset, offsets[offsets.len() - 1] + 1);
    // Each key once, bound to the event that announced it.
    let keys = event_key::Entity::find().all(&db).await.unwrap();
    assert_eq!(keys.len(), 3 + 2 + 3, "{keys:?}");
    assert!(
        keys.iter()
            .all(|k| k.event_id.is_some_and(|o| offsets.contains(&o)))
    );
    // Counted, under the kind only.
    let metrics = app.metrics().await;
    for (kind, n) in [
        ("message.new", 3),
        ("message.edited", 1),
        ("message.deleted", 1),
    ] {
        let line = format!(r#"tgvisor_events_duplicates_dropped_total{{kind="{kind}"}} {n}"#);
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
    app.stop().await;
}

#[actix_rt::test]
async fn the_schema_refuses_a_second_row_for_a_key() {
    let app = spawn_app().await;
    let db = app.db_conn().await;
    let insert = "INSERT INTO event_keys (topic, chat_id, message_id, change, event_id) \
                  VALUES ('account:5', 7, 1, 'new', 10)";
    db.execute_unprepared(insert).await.unwrap();
    let err = db.execute_unprepared(insert).await.unwrap_err();
    assert!(
        matches!(
            err.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ),
        "{err:?}"
    );
    // Another change, chat, message or topic is another key.
    for other in [
        "('account:5', 7, 1, 'deleted', 11)",
        "('account:5', 8, 1, 'new', 12)",
        "('account:5', 7, 2, 'new', 13)",
        "('account:6', 7, 1, 'new', 14)",
    ] {
        db.execute_unprepared(&format!(
            "INSERT INTO event_keys (topic, chat_id, message_id, change, event_id) VALUES {other}"
        ))
        .await
        .unwrap();
    }
    app.stop().await;
}

#[actix_rt::test]
async fn keys_are_pruned_with_the_events_that_announced_them() {
    let app = spawn_app().await;
    let db = app.db_conn().await;
    let topic = "account:902";
    let writer = app.events.writer(topic);
    for id in 1..=6 {
        let (data, keys) = new_message(id);
        writer
            .publish_deduped("message.new", data, keys, None)
            .await
            .unwrap();
    }
    writer.flush().await.unwrap();

    // Keep the newest two events: the keys of the four others go too.
    tgvisor::events::prune(&db, Duration::from_secs(3600), 2)
        .await
        .unwrap();
    let left: Vec<i64> = event_key::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.message_id)
        .collect();
    assert_eq!(left, [5, 6]);
    // A repeat of a kept one is still dropped.
    let (data, keys) = new_message(6);
    writer
        .publish_deduped("message.new", data, keys, None)
        .await
        .unwrap();
    writer.flush().await.unwrap();
    assert_eq!(since(&db, topic, 0, 100).await.unwrap().len(), 2);
    assert_eq!(event_key::Entity::find().count(&db).await.unwrap(), 2);
    app.stop().await;
}

#[actix_rt::test]
async fn the_upgrade_keys_the_messages_already_announced() {
    use migration::{Migrator, MigratorTrait};
    let dir = tempfile::tempdir().unwrap();
    let (test_db, url) = crate::helpers::TestDatabase::create(dir.path()).await;
    let db = sea_orm::Database::connect(&url).await.unwrap();
    // The schema before this change, and a log the old version wrote: a
    // message announced twice (the bug), a deletion, an edit.
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261126_000008_event_keys")
        .expect("the migration that brings the keys");
    Migrator::up(&db, Some(before as u32)).await.unwrap();
    let topic = "account:3";
    let new = |id: i64| json!({ "message": { "id": id, "chat_id": 7 }, "account_id": 3 });
    let mut offsets = Vec::new();
    for (kind, data) in [
        ("message.new", new(1)),
        ("message.new", new(2)),
        ("message.new", new(1)),
        (
            "message.deleted",
            json!({ "chat_id": null, "message_ids": [1, 2] }),
        ),
        ("message.edited", new(2)),
    ] {
        offsets.push(
            tgvisor::events::append(&db, topic, kind, data)
                .await
                .unwrap()
                .offset,
        );
    }

    Migrator::up(&db, None).await.unwrap();
    let mut keys: Vec<(i64, i64, String, Option<i64>)> = event_key::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.chat_id, k.message_id, k.change, k.event_id))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            (0, 1, "deleted".to_owned(), Some(offsets[3])),
            (0, 2, "deleted".to_owned(), Some(offsets[3])),
            (7, 1, "new".to_owned(), Some(offsets[0])),
            (7, 2, "new".to_owned(), Some(offsets[1])),
        ]
    );
    db.close().await.unwrap();
    drop(test_db);
}
