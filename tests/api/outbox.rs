//! Sending through the durable outbox on the simulated Telegram: accepted
//! once, delivered once, idempotent retries, status events, bad input.

use crate::helpers::accounts::{connected_account, send, wait_status};
use crate::helpers::{TestApp, spawn_app};
use serde_json::{Value, json};
use tgvisor::telegram::sim::ECHO_USER_ID;

const PHONE: &str = "+9996631234";

/// Sends `text` to Saved Messages after a 600 s FLOOD_WAIT was set up for
/// sends: answers the message id and its view once it is back in the queue.
async fn held_by_a_flood_wait(
    app: &TestApp,
    token: &str,
    account: i64,
    text: &str,
) -> (i64, Value) {
    use tgvisor::telegram::sim::{FloodRule, FloodTarget};
    app.world.inject_flood(FloodRule {
        target: FloodTarget::Method("messages.sendMessage".into()),
        seconds: 600,
        times: 1,
    });
    let res = send(
        app,
        token,
        account,
        &json!({ "chat": "me", "text": text }),
        None,
    )
    .await;
    let message_id = res.json::<Value>().await.unwrap()["message_id"]
        .as_i64()
        .unwrap();
    (
        message_id,
        wait_status(app, account, message_id, "queued").await,
    )
}

/// GET /accounts/{id}/messages/{message_id}.
async fn message_view(app: &TestApp, token: &str, account: i64, message_id: i64) -> Value {
    app.get_auth(
        &format!("/api/v1/accounts/{account}/messages/{message_id}"),
        token,
    )
    .await
    .json()
    .await
    .unwrap()
}

async fn error_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (status, body["error"].clone())
}

fn outgoing_texts(app: &TestApp, peer: i64) -> Vec<String> {
    app.world
        .dialog(PHONE, peer)
        .into_iter()
        .filter(|m| m.outgoing)
        .map(|m| m.text)
        .collect()
}

#[actix_rt::test]
async fn a_message_is_delivered_once_with_its_status_and_echo_answers_as_an_event() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let id = connected_account(&app, &token, PHONE).await;

    let res = send(
        &app,
        &token,
        id,
        &json!({ "chat": "@echo", "text": "ping" }),
        Some("req-1"),
    )
    .await;
    assert_eq!(res.status().as_u16(), 202);
    assert!(res.headers().get("idempotent-replayed").is_none());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "queued");
    let message_id = body["message_id"].as_i64().unwrap();

    // queued -> sending -> sent, each an event on the account's topic.
    let sending = wait_status(&app, id, message_id, "sending").await;
    assert_eq!(sending["attempt"], 1);
    let sent = wait_status(&app, id, message_id, "sent").await;
    let telegram_id = sent["telegram_message_id"].as_i64().unwrap();
    assert_eq!(sent["chat_id"], ECHO_USER_ID);

    // @echo answers: the round trip comes back as message.new.
    let echoed = app
        .wait_event(&format!("account:{id}"), |e| {
            e.kind == "message.new"
                && e.data["message"]["sender_id"] == ECHO_USER_ID
                && e.data["message"]["text"] == "ping"
        })
        .await;
    assert_eq!(echoed.data["account_id"], id);

    let view = message_view(&app, &token, id, message_id).await;
    assert_eq!(view["status"], "sent");
    assert_eq!(view["attempts"], 1);
    assert_eq!(view["flood_waits"], 0);
    assert_eq!(view["telegram_message_id"], telegram_id);
    assert_eq!(view["chat"], "@echo");
    assert!(view["last_error"].is_null());
    assert!(view["sent_at"].is_string());

    // A retry with the same key answers the original message: no second send.
    let res = send(
        &app,
        &token,
        id,
        &json!({ "chat": "@echo", "text": "ping" }),
        Some("req-1"),
    )
    .await;
    assert_eq!(res.status().as_u16(), 202);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["message_id"], message_id);
    assert_eq!(again["status"], "sent");

    // The same key with a different request is refused.
    let (status, err) = error_of(
        send(
            &app,
            &token,
            id,
            &json!({ "chat": "@echo", "text": "pong" }),
            Some("req-1"),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("idempotency_key_reused"))
    );

    assert_eq!(outgoing_texts(&app, ECHO_USER_ID), ["ping"]);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("tgvisor_outbox_accepted_total 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("tgvisor_outbox_idempotent_replays_total 1\n"));
    assert!(metrics.contains("tgvisor_outbox_messages_total{status=\"sent\"} 1\n"));
    app.stop().await;
}

#[actix_rt::test]
async fn keys_are_per_user_and_concurrent_retries_make_one_message() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let a = connected_account(&app, &alice, PHONE).await;
    let b = connected_account(&app, &bob, "+9996631235").await;

    // Ten concurrent sends with one key: one message, ten identical answers.
    let body = json!({ "chat": "me", "text": "exactly once" });
    let answers = futures_util::future::join_all(
        (0..10).map(|_| send(&app, &alice, a, &body, Some("same-key"))),
    )
    .await;
    let mut ids = Vec::new();
    for res in answers {
        assert_eq!(res.status().as_u16(), 202);
        ids.push(
            res.json::<Value>().await.unwrap()["message_id"]
                .as_i64()
                .unwrap(),
        );
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one message for one key");
    wait_status(&app, a, ids[0], "sent").await;

    // Bob may use the same key for his own message.
    let res = send(&app, &bob, b, &body, Some("same-key")).await;
    assert_eq!(res.status().as_u16(), 202);
    assert!(res.headers().get("idempotent-replayed").is_none());
    let bobs = res.json::<Value>().await.unwrap()["message_id"]
        .as_i64()
        .unwrap();
    assert_ne!(bobs, ids[0]);

    let alice_tg = app.world.user_id(PHONE).unwrap();
    assert_eq!(outgoing_texts(&app, alice_tg), ["exactly once"]);
    app.stop().await;
}

#[actix_rt::test]
async fn bad_input_gets_a_clear_error_and_nothing_is_queued() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let id = connected_account(&app, &alice, PHONE).await;
    let bobs = connected_account(&app, &bob, "+9996631235").await;

    // (body, Idempotency-Key, status, code, field, reason)
    type Case<'a> = (
        Value,
        Option<&'a str>,
        u16,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            json!({ "chat": "me", "text": "" }),
            None,
            400,
            "invalid_input",
            Some("text"),
            Some("empty"),
        ),
        (
            json!({ "chat": "me", "text": "  \n " }),
            None,
            400,
            "invalid_input",
            Some("text"),
            Some("empty"),
        ),
        (
            json!({ "chat": "me", "text": "x".repeat(5000) }),
            None,
            400,
            "invalid_input",
            Some("text"),
            Some("too_long"),
        ),
        (
            json!({ "chat": "not a chat!", "text": "hi" }),
            None,
            400,
            "invalid_input",
            Some("chat"),
            Some("invalid_format"),
        ),
        (
            json!({ "chat": "@a", "text": "hi" }),
            None,
            400,
            "invalid_input",
            Some("chat"),
            None,
        ),
        (
            json!({ "chat": "me", "text": "hi", "reply_to": 0 }),
            None,
            400,
            "invalid_input",
            Some("reply_to"),
            None,
        ),
        (
            json!({ "chat": "me", "text": "hi", "colour": "red" }),
            None,
            400,
            "invalid_field",
            None,
            None,
        ),
        (
            json!({ "chat": "me" }),
            None,
            400,
            "invalid_input",
            Some("text"),
            Some("empty"),
        ),
        (
            json!({ "chat": "me", "text": "hi" }),
            Some("has space"),
            400,
            "invalid_input",
            Some("idempotency_key"),
            Some("invalid_characters"),
        ),
    ];
    for (body, key, status, code, field, reason) in cases {
        let res = send(&app, &alice, id, &body, key).await;
        let (got, err) = error_of(res).await;
        assert_eq!((got, err["code"].as_str()), (status, Some(code)), "{body}");
        if let Some(f) = field {
            assert_eq!(err["field"], f, "{body}");
        }
        if let Some(r) = reason {
            assert_eq!(err["reason"], r, "{body}");
        }
        assert!(
            !err["message"].as_str().unwrap().contains("not a chat"),
            "input is not echoed"
        );
    }

    // Unknown account and someone else's account: the same 404.
    for account in [999_999, bobs] {
        let res = send(
            &app,
            &alice,
            account,
            &json!({ "chat": "me", "text": "hi" }),
            None,
        )
        .await;
        let (status, err) = error_of(res).await;
        assert_eq!((status, err["code"].as_str()), (404, Some("not_found")));
    }
    let (status, _) = error_of(
        app.get_auth(&format!("/api/v1/accounts/{bobs}/messages/1"), &alice)
            .await,
    )
    .await;
    assert_eq!(status, 404);
    // No token at all.
    let res = app
        .post_json(
            &format!("/api/v1/accounts/{id}/messages"),
            None,
            &json!({ "chat": "me", "text": "hi" }),
        )
        .await;
    assert_eq!(res.status().as_u16(), 401);

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("tgvisor_outbox_accepted_total 0\n"),
        "nothing was queued"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn an_account_that_needs_its_owner_refuses_messages() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let id = connected_account(&app, &token, PHONE).await;
    app.world.revoke_sessions(PHONE);
    app.wait_state(id, "revoked", 0).await;
    let res = send(
        &app,
        &token,
        id,
        &json!({ "chat": "me", "text": "hi" }),
        None,
    )
    .await;
    let (status, err) = error_of(res).await;
    assert_eq!(status, 409);
    assert_eq!(err["code"], "account_unavailable");
    assert_eq!(err["state"], "revoked");
    app.stop().await;
}

#[actix_rt::test]
async fn history_pages_back_with_before() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let id = connected_account(&app, &token, PHONE).await;
    for text in ["one", "two", "three"] {
        let res = send(
            &app,
            &token,
            id,
            &json!({ "chat": "me", "text": text }),
            None,
        )
        .await;
        let message_id = res.json::<Value>().await.unwrap()["message_id"]
            .as_i64()
            .unwrap();
        wait_status(&app, id, message_id, "sent").await;
    }
    let page = |query: String| {
        let app = &app;
        let token = &token;
        async move {
            let body: Value = app
                .get_auth(
                    &format!("/api/v1/accounts/{id}/chats/me/messages?{query}"),
                    token,
                )
                .await
                .json()
                .await
                .unwrap();
            body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["id"].as_i64().unwrap(),
                        m["text"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let newest = page("limit=2".into()).await;
    let texts: Vec<&str> = newest.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["three", "two"]);
    let older = page(format!("limit=2&before={}", newest[1].0)).await;
    let texts: Vec<&str> = older.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["one"]);
    let res = app
        .get_auth(
            &format!("/api/v1/accounts/{id}/chats/me/messages?before=0"),
            &token,
        )
        .await;
    assert_eq!(res.status().as_u16(), 400);
    app.stop().await;
}

#[actix_rt::test]
async fn a_long_account_flood_wait_keeps_the_message_queued_and_shows_flood_limited() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let id = connected_account(&app, &token, PHONE).await;
    let (message_id, queued) = held_by_a_flood_wait(&app, &token, id, "later").await;
    assert_eq!(queued["error"], "flood_wait");
    assert_eq!(queued["flood_wait"]["seconds"], 600);
    assert_eq!(queued["flood_wait"]["scope"]["kind"], "account");
    let state = app.wait_state(id, "flood_limited", 0).await;
    assert_eq!(state.data["seconds"], 600);

    let view = message_view(&app, &token, id, message_id).await;
    assert_eq!(view["status"], "queued");
    assert_eq!(view["flood_waits"], 1);
    assert_eq!(view["last_error"], "flood_wait");
    assert!(view["next_attempt_at"].is_string());

    // The account's limits show the block and the flood wait.
    let limits: Value = app
        .get_auth(&format!("/api/v1/accounts/{id}/limits"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(limits["flood_waits_last_hour"], 1);
    assert_eq!(limits["flood_waits"][0]["method"], "messages.sendMessage");
    let account_key = limits["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["limit"] == "account_messages")
        .expect("the account key");
    assert!(account_key["blocked_for_ms"].as_u64().unwrap() > 590_000);
    // Still accepted meanwhile: nothing is dropped.
    let res = send(
        &app,
        &token,
        id,
        &json!({ "chat": "me", "text": "also later" }),
        None,
    )
    .await;
    assert_eq!(res.status().as_u16(), 202);
    assert_eq!(app.world.calls()["messages.sendMessage"], 1);
    app.stop().await;
}

/// `tgvisor_outbox_oldest_age_seconds`: above zero while a message cannot
/// be delivered, zero again once it has left the outbox. The gauges are
/// recounted every 15 s; the test runs that recount itself
/// ([`sample_backlog`], what the housekeeping task calls) into gauges of
/// its own, so nothing waits for the timer.
#[actix_rt::test]
async fn the_oldest_age_gauge_shows_a_stuck_message_until_it_leaves_the_outbox() {
    use tgvisor::outbox::{Backlog, OutboxMetrics, sample_backlog};
    let app = spawn_app().await;
    let scrape = app.metrics().await;
    assert!(
        scrape
            .lines()
            .any(|l| l == "tgvisor_outbox_oldest_age_seconds 0"),
        "an empty outbox has no age:\n{scrape}"
    );
    let (_, token) = app.user("alice").await;
    let id = connected_account(&app, &token, PHONE).await;
    // Ten minutes of FLOOD_WAIT: the message stays queued.
    let (_, queued) = held_by_a_flood_wait(&app, &token, id, "stuck").await;
    assert_eq!(queued["error"], "flood_wait");

    let metrics = OutboxMetrics::new(&prometheus::Registry::new()).unwrap();
    let db = app.db_conn().await;
    let backlog = sample_backlog(&db, &metrics).await.unwrap();
    assert_eq!(backlog.depth, 1);
    assert_eq!(metrics.depth.get(), 1);
    let age = metrics.oldest_age.get();
    assert!(age > 0.0 && age < 600.0, "age {age}");

    // Removing the account removes its message: nothing waits any more.
    let res = app
        .delete_auth(&format!("/api/v1/accounts/{id}"), &token)
        .await;
    assert_eq!(res.status().as_u16(), 204);
    let backlog = sample_backlog(&db, &metrics).await.unwrap();
    assert_eq!(backlog, Backlog::default());
    assert_eq!(metrics.depth.get(), 0);
    assert_eq!(metrics.oldest_age.get(), 0.0);
    app.stop().await;
}

#[actix_rt::test]
async fn a_retry_is_answered_even_when_the_account_went_down_meanwhile() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let id = connected_account(&app, &token, PHONE).await;
    let body = json!({ "chat": "me", "text": "before the revocation" });
    let first = send(&app, &token, id, &body, Some("k-1")).await;
    let message_id = first.json::<Value>().await.unwrap()["message_id"].clone();
    app.world.revoke_sessions(PHONE);
    app.wait_state(id, "revoked", 0).await;
    // The client never saw the first 202 and retries: the original answers.
    let retry = send(&app, &token, id, &body, Some("k-1")).await;
    assert_eq!(retry.status().as_u16(), 202);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(
        retry.json::<Value>().await.unwrap()["message_id"],
        message_id
    );
    // A new message is refused.
    let (status, err) = error_of(send(&app, &token, id, &body, Some("k-2")).await).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("account_unavailable"))
    );
    app.stop().await;
}

/// One group-commit batch holding every kind of request, written by a
/// second outbox on the same database (as a second node would): each gets
/// the answer it would get alone.
#[actix_rt::test]
async fn one_batch_answers_every_kind_of_request_as_it_would_alone() {
    use tgvisor::domain::validation::ChatRef;
    use tgvisor::outbox::{EnqueueError, IdempotencyKey, NewMessage, Outbox, OutboxMetrics};

    let app = spawn_app().await;
    let (alice_id, alice) = app.user("alice").await;
    let (bob_id, bob) = app.user("bob").await;
    let a = connected_account(&app, &alice, PHONE).await;
    let down = connected_account(&app, &alice, "+9996631236").await;
    let b = connected_account(&app, &bob, "+9996631235").await;

    let old = json!({ "chat": "me", "text": "old" });
    let res = send(&app, &alice, a, &old, Some("k-old")).await;
    let old_id = res.json::<Value>().await.unwrap()["message_id"].clone();
    let res = send(&app, &alice, down, &old, Some("k-down")).await;
    let down_id = res.json::<Value>().await.unwrap()["message_id"].clone();
    app.world.revoke_sessions("+9996631236");
    app.wait_state(down, "revoked", 0).await;

    let registry = prometheus::Registry::new();
    let metrics = OutboxMetrics::new(&registry).unwrap();
    let outbox = Outbox::new(app.db_conn().await, &app.settings.outbox, metrics.clone());
    // Its writer runs under a supervisor of its own, started after the
    // requests below are queued.
    let start_writer = || {
        let [writer, _] = outbox.task_children();
        tgvisor::supervisor::SupervisorSpec::new("t")
            .child(writer)
            .start_root(std::sync::Arc::new(
                tgvisor::supervisor::SupervisionRuntime::standalone(),
            ))
    };
    let msg = |user_id: i64, account_id: i64, key: Option<&str>, text: &str| NewMessage {
        account_id,
        user_id,
        idempotency_key: key.map(|k| IdempotencyKey::parse(k).unwrap()),
        chat: ChatRef::parse("me").unwrap(),
        text: text.to_owned(),
        reply_to: None,
        silent: false,
        media: None,
    };
    let requests = vec![
        msg(alice_id, a, None, "new"),                  // 0: new
        msg(alice_id, a, Some("k-new"), "n"),           // 1: new
        msg(alice_id, a, Some("k-new"), "n"),           // 2: as 1
        msg(alice_id, a, Some("k-new"), "different"),   // 3: key reused
        msg(alice_id, a, Some("k-old"), "old"),         // 4: the earlier row
        msg(alice_id, a, Some("k-old"), "other"),       // 5: key reused
        msg(alice_id, down, Some("k-down"), "old"),     // 6: the earlier row, account down
        msg(alice_id, down, Some("k-fresh"), "z"),      // 7: account down
        msg(alice_id, down, None, "z"),                 // 8: account down
        msg(alice_id, b, None, "not hers"),             // 9: not found
        msg(bob_id, b, Some("k-old"), "old"),           // 10: new (keys are per user)
        msg(alice_id, a, Some("k-old"), "old"),         // 11: the earlier row again
        msg(alice_id, down, Some("k-down"), "changed"), // 12: key reused, account down
    ];
    // Sent together, before the writer runs: one batch.
    let sends = futures_util::future::join_all(requests.into_iter().map(|m| outbox.enqueue(m)));
    let (answers, _root) = futures_util::join!(sends, async { start_writer() });
    assert_eq!(metrics.batch_rows.get_sample_count(), 1, "one commit");
    assert_eq!(metrics.batch_rows.get_sample_sum(), 3.0, "three new rows");

    let ok = |i: usize| -> (i64, bool) {
        match &answers[i] {
            Ok(a) => (a.message_id, a.replayed),
            Err(e) => panic!("request {i}: {e:?}"),
        }
    };
    let err = |i: usize| -> String {
        match &answers[i] {
            Err(e) => format!("{e:?}"),
            Ok(a) => panic!("request {i} accepted: {a:?}"),
        }
    };
    let (new, replayed) = ok(0);
    assert!(!replayed);
    let (keyed, replayed) = ok(1);
    assert!(!replayed && keyed != new);
    assert_eq!(ok(2), (keyed, true));
    assert_eq!(err(3), "KeyReused");
    assert_eq!(ok(4), (old_id.as_i64().unwrap(), true));
    assert_eq!(err(5), "KeyReused");
    assert_eq!(ok(6), (down_id.as_i64().unwrap(), true));
    assert_eq!(err(7), "Unavailable(Revoked)");
    assert_eq!(err(8), "Unavailable(Revoked)");
    assert!(matches!(answers[9], Err(EnqueueError::NotFound)));
    let (bobs, replayed) = ok(10);
    assert!(!replayed && bobs != keyed && bobs != new);
    assert_eq!(ok(11), (old_id.as_i64().unwrap(), true));
    assert_eq!(err(12), "KeyReused");
    assert_eq!(metrics.replayed.get(), 4);
    assert_eq!(metrics.accepted.get(), 3);

    // Nothing else was written: the three new rows, and the two before.
    let db = app.db_conn().await;
    use sea_orm::{EntityTrait, PaginatorTrait};
    assert_eq!(
        tgvisor::entities::outbox::Entity::find()
            .count(&db)
            .await
            .unwrap(),
        5
    );
    app.stop().await;
}
