//! The durable event log on the real database.

use crate::helpers::spawn_app;
use serde_json::json;
use tgvisor::events::{account_topic, append, since};

#[actix_rt::test]
async fn events_get_increasing_offsets_and_replay_per_topic_in_order() {
    let app = spawn_app().await;
    let db = app.db_conn().await;
    let (a, b) = (account_topic(1), account_topic(2));

    let mut offsets = Vec::new();
    for i in 0..5 {
        let topic = if i % 2 == 0 { &a } else { &b };
        let e = append(&db, topic, "message.new", json!({ "n": i }))
            .await
            .unwrap();
        assert_eq!(e.topic, *topic);
        offsets.push(e.offset);
    }
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");

    let all_a = since(&db, &a, 0, 100).await.unwrap();
    assert_eq!(
        all_a
            .iter()
            .map(|e| e.data["n"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 2, 4]
    );
    // Resuming after the first event of A gives exactly the rest, in order.
    let rest = since(&db, &a, all_a[0].offset, 100).await.unwrap();
    assert_eq!(rest, all_a[1..].to_vec());
    // The limit pages.
    let page = since(&db, &a, 0, 2).await.unwrap();
    assert_eq!(page, all_a[..2].to_vec());
    assert!(
        since(&db, &a, all_a[2].offset, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(since(&db, &b, 0, 100).await.unwrap().len(), 2);
    app.stop().await;
}
