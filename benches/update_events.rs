//! Throughput of incoming updates into the event log, exactly once: each
//! update is a `message.new` with its dedupe key and a checkpoint of the
//! account's update state, committed together.
//!
//! `cargo bench --bench update_events` (SQLite in a temporary directory;
//! with `TGVISOR_BENCH_DATABASE_URL=postgres://…` an existing, migrated or
//! empty PostgreSQL database instead) prints updates per second for
//! - a burst: `UPDATES` (default 5000) published at once, which the topic's
//!   writer groups up to `MAX_BATCH` per transaction;
//! - one at a time: each published and waited for, one transaction each
//!   (what a writer without grouping costs, and the pace of a quiet account);
//! - the burst again: every update a repeat, dropped by its key.

use sea_orm::{ActiveModelTrait, Set};
use serde_json::json;
use std::time::Instant;
use tgvisor::accounts::update_state;
use tgvisor::entities::{account, user};
use tgvisor::events::{Dedupe, EventLog, EventMetrics, TopicWriter, account_topic};
use tgvisor::telegram::UpdateState;

async fn account_row(db: &sea_orm::DatabaseConnection) -> i64 {
    let now = chrono::Utc::now().fixed_offset();
    let owner = user::ActiveModel {
        username: Set(format!("bench-{}", uuid::Uuid::new_v4())),
        username_key: Set(format!("bench-{}", uuid::Uuid::new_v4())),
        email: Set(format!("{}@example.com", uuid::Uuid::new_v4())),
        email_key: Set(format!("{}@example.com", uuid::Uuid::new_v4())),
        password_hash: Set("x".into()),
        role: Set("user".into()),
        token_version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .expect("a user");
    account::ActiveModel {
        user_id: Set(owner.id),
        phone_digest: Set(uuid::Uuid::new_v4().to_string()),
        phone_hint: Set("+*****00".into()),
        telegram_user_id: Set(None),
        state: Set("connected".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .expect("an account")
    .id
}

async fn publish(writer: &TopicWriter, account: i64, id: i64) {
    let state = UpdateState {
        pts: i32::try_from(id).unwrap_or(i32::MAX),
        qts: 0,
        date: 1_700_000_000,
        seq: 0,
        channels: Vec::new(),
    };
    writer
        .publish_deduped(
            "message.new",
            json!({ "message": { "id": id, "chat_id": 7, "text": "a message of some length" } }),
            Dedupe::new(7, "new", vec![id]),
            Some(update_state::write(account, state)),
        )
        .await
        .expect("the writer runs");
}

fn report(what: &str, n: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{what:<28} {n:>6} updates in {secs:>7.3} s: {:>8.0} updates/s",
        n as f64 / secs
    );
}

fn main() {
    let updates: u64 = std::env::var("UPDATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = std::env::var("TGVISOR_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| tgvisor::config::sqlite_url(&dir.path().join("bench.db")));
    let settings = tgvisor::config::Settings::from_defaults(
        tgvisor::config::Environment::Test,
        figment::Figment::new(),
    )
    .expect("default settings");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let db = tgvisor::db::connect(&url, &settings.database)
            .await
            .expect("the database");
        tgvisor::db::migrate(&db).await.expect("migrations");
        let log = EventLog::new(db.clone(), 1024, EventMetrics::unregistered());
        println!("database: {}", url.split(':').next().unwrap_or("?"));

        let account = account_row(&db).await;
        let writer = log.writer(&account_topic(account));
        let started = Instant::now();
        for id in 1..=updates as i64 {
            publish(&writer, account, id).await;
        }
        writer.flush().await.expect("flushed");
        report("burst (grouped)", updates, started);

        let quiet = updates.min(1000);
        let account = account_row(&db).await;
        let writer = log.writer(&account_topic(account));
        let started = Instant::now();
        for id in 1..=quiet as i64 {
            publish(&writer, account, id).await;
            writer.flush().await.expect("flushed");
        }
        report("one at a time", quiet, started);

        let started = Instant::now();
        for id in 1..=quiet as i64 {
            publish(&writer, account, id).await;
        }
        writer.flush().await.expect("flushed");
        report("repeats (dropped)", quiet, started);
    });
}
