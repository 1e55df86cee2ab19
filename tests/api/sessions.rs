//! The encrypted session store against the real database: ciphertext at
//! rest, binding to the row, one active session per account, rotation in
//! one transaction, and re-encryption under a new key.

use crate::helpers::accounts::{auth_key, import};
use crate::helpers::{TestApp, spawn_app};
use base64::Engine;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use std::ops::ControlFlow;
use std::sync::Arc;
use tgvisor::entities::session;
use tgvisor::sessions::{SessionData, SessionStore, SessionStoreError};

fn store(app: &TestApp, db: sea_orm::DatabaseConnection) -> SessionStore {
    let keyring = tgvisor::security::session_keyring(&app.settings).unwrap();
    SessionStore::new(db, Arc::new(keyring))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[actix_rt::test]
async fn session_blobs_hold_no_plaintext_and_fail_to_decrypt_in_another_row() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let a = import(&app, &token, "+15550000001", &auth_key(7)).await["id"]
        .as_i64()
        .unwrap();
    let b = import(&app, &token, "+15550000002", &auth_key(8)).await["id"]
        .as_i64()
        .unwrap();
    let db = app.db_conn().await;
    let rows = session::Entity::find()
        .order_by_asc(session::Column::Id)
        .all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);

    let key = auth_key(7);
    let b64 = base64::engine::general_purpose::STANDARD.encode(key);
    for row in &rows {
        assert_eq!(row.nonce.len(), 12, "96-bit nonce");
        assert_eq!(row.key_id, "k1");
        assert!(!contains(&row.ciphertext, &key[..16]), "raw auth key bytes");
        assert!(
            !contains(&row.ciphertext, &b64.as_bytes()[..16]),
            "base64 auth key"
        );
        assert!(!contains(&row.ciphertext, b"auth_key"), "plaintext JSON");
        assert!(
            !contains(&row.ciphertext, b"149.154.167.51"),
            "plaintext address"
        );
    }
    assert_ne!(rows[0].nonce, rows[1].nonce);

    let store = store(&app, db.clone());
    let loaded = store.load_active(a).await.unwrap().unwrap();
    let data = SessionData::from_bytes(&loaded.plaintext).unwrap();
    assert_eq!(data.dcs[0].auth_key.as_ref().unwrap().expose(), &key);

    // Copy A's blob (ciphertext, nonce, key id) over B's row.
    let (row_a, row_b) = (&rows[0], &rows[1]);
    assert_eq!(row_a.account_id, a);
    session::ActiveModel {
        id: Set(row_b.id),
        key_id: Set(row_a.key_id.clone()),
        nonce: Set(row_a.nonce.clone()),
        ciphertext: Set(row_a.ciphertext.clone()),
        ..Default::default()
    }
    .update(&db)
    .await
    .unwrap();
    match store.load_active(b).await {
        Err(SessionStoreError::Undecryptable { session_id, .. }) => {
            assert_eq!(session_id, row_b.id)
        }
        other => panic!("a moved blob must not decrypt, got {other:?}"),
    }
    // A's own row still opens.
    assert!(store.load_active(a).await.unwrap().is_some());
    app.stop().await;
}

#[actix_rt::test]
async fn rotation_swaps_the_active_session_in_one_transaction_and_the_schema_allows_one() {
    let app = spawn_app().await;
    let (_, token) = app.user("bob").await;
    let account = import(&app, &token, "+15550000003", &auth_key(9)).await["id"]
        .as_i64()
        .unwrap();
    let db = app.db_conn().await;
    let store = store(&app, db.clone());
    let old = store.load_active(account).await.unwrap().unwrap();

    let mut next = SessionData::from_bytes(&old.plaintext).unwrap();
    next.user_id = Some(4242);
    let new_id = store.rotate(account, &next.to_bytes()).await.unwrap();
    assert_ne!(new_id, old.session_id);

    let rows = session::Entity::find()
        .filter(session::Column::AccountId.eq(account))
        .order_by_asc(session::Column::Id)
        .all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(!rows[0].is_active && rows[0].deactivated_at.is_some());
    assert!(rows[1].is_active && rows[1].id == new_id);
    let loaded = store.load_active(account).await.unwrap().unwrap();
    assert_eq!(
        SessionData::from_bytes(&loaded.plaintext).unwrap().user_id,
        Some(4242)
    );

    // The schema itself refuses a second active session for the account.
    let second = session::ActiveModel {
        account_id: Set(account),
        key_id: Set("k1".into()),
        nonce: Set(vec![0; 12]),
        ciphertext: Set(vec![1, 2, 3]),
        is_active: Set(true),
        error_count: Set(0),
        created_at: Set(chrono::Utc::now().fixed_offset()),
        ..Default::default()
    }
    .insert(&db)
    .await;
    assert!(
        matches!(
            second.as_ref().map_err(|e| e.sql_err()),
            Err(Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
        ),
        "{second:?}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn key_rotation_reencrypts_everything_resumably_and_every_session_still_reads() {
    let app = spawn_app().await;
    let (_, token) = app.user("carol").await;
    let mut accounts = Vec::new();
    for i in 0..5u8 {
        let phone = format!("+1555000010{i}");
        let id = import(&app, &token, &phone, &auth_key(20 + i)).await["id"]
            .as_i64()
            .unwrap();
        accounts.push((id, auth_key(20 + i)));
    }
    let k2 = tgvisor::config::random_key();
    let app = {
        let k2 = k2.clone();
        app.restart(move |f| {
            f.merge(("secrets.session.active", "k2"))
                .merge(("secrets.session.keys.k2", k2))
        })
        .await
    };

    // First run: stopped after one batch of two (an operator's Ctrl-C).
    let first =
        tgvisor::ops::rotate_session_keys(&app.settings, 2, false, |_| ControlFlow::Break(()))
            .await
            .unwrap();
    assert!(first.interrupted);
    assert_eq!(first.report.rewrapped, 2);
    assert_eq!(first.before.get("k1"), Some(&5));
    assert_eq!(first.after.get("k2"), Some(&2));
    // Second run finishes the rest and nothing twice.
    let second =
        tgvisor::ops::rotate_session_keys(&app.settings, 2, false, |_| ControlFlow::Continue(()))
            .await
            .unwrap();
    assert!(!second.interrupted);
    assert_eq!(second.report.rewrapped, 3);
    assert_eq!(second.report.batches, 2);
    assert!(second.report.failed.is_empty());
    assert_eq!(second.after.get("k2"), Some(&5));
    assert_eq!(second.after.get("k1"), None);

    // With k1 removed altogether, every session still reads.
    let only_k2 = tgvisor::security::crypto::Keyring::new(
        tgvisor::security::crypto::KeyId::parse("k2").unwrap(),
        vec![(
            tgvisor::security::crypto::KeyId::parse("k2").unwrap(),
            secrecy::SecretString::from(k2),
        )],
    )
    .unwrap();
    let store = SessionStore::new(app.db_conn().await, Arc::new(only_k2));
    for (id, key) in &accounts {
        let loaded = store.load_active(*id).await.unwrap().unwrap();
        let data = SessionData::from_bytes(&loaded.plaintext).unwrap();
        assert_eq!(data.dcs[0].auth_key.as_ref().unwrap().expose(), key);
    }
    // And the audit log recorded both runs.
    let db = app.db_conn().await;
    let runs = tgvisor::entities::audit_log::Entity::find()
        .filter(tgvisor::entities::audit_log::Column::Action.eq("keys.rotate"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    app.stop().await;
}
