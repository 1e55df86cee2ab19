//! Events as tests read them: `message.new` announcements by message.

use std::collections::BTreeMap;
use std::time::Duration;
use tgvisor::events::StoredEvent;

/// `message.new` events on `topic`, by (chat, message id).
pub async fn announced(
    conn: &sea_orm::DatabaseConnection,
    topic: &str,
) -> BTreeMap<(i64, i64), Vec<StoredEvent>> {
    let mut by_message: BTreeMap<(i64, i64), Vec<StoredEvent>> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = tgvisor::events::since(conn, topic, after, 1000)
            .await
            .expect("reading the event log");
        let Some(last) = page.last() else {
            return by_message;
        };
        after = last.offset;
        for e in page.into_iter().filter(|e| e.kind == "message.new") {
            let m = &e.data["message"];
            let key = (m["chat_id"].as_i64().unwrap(), m["id"].as_i64().unwrap());
            by_message.entry(key).or_default().push(e);
        }
    }
}

/// Waits until the log announces a message for every text in `expected`
/// (bounded); answers the announcements.
pub async fn wait_announced(
    conn: &sea_orm::DatabaseConnection,
    topic: &str,
    expected: &[String],
) -> BTreeMap<(i64, i64), Vec<StoredEvent>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let by_message = announced(conn, topic).await;
        let seen = texts(&by_message);
        if expected.iter().all(|t| seen.contains(t)) {
            return by_message;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all announced within 60 s; seen: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Texts of the announced messages, each as often as it was announced.
pub fn texts(by_message: &BTreeMap<(i64, i64), Vec<StoredEvent>>) -> Vec<String> {
    let mut texts: Vec<String> = by_message
        .values()
        .flatten()
        .map(|e| e.data["message"]["text"].as_str().unwrap().to_owned())
        .collect();
    texts.sort();
    texts
}
