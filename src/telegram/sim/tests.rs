use super::conventions::parse_sim_phone;
use super::*;
use crate::domain::validation::ChatRef;
use crate::telegram::{FloodScope, Incoming, LoginStep, Me, PeerKind, SendOptions, Update};
use std::time::Duration;

struct NoSink;

#[async_trait]
impl SessionSink for NoSink {
    async fn save(&self, _: &SessionData) -> anyhow::Result<()> {
        Ok(())
    }
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

async fn sign_in(backend: &SimBackend, number: &str) -> (SessionData, Me) {
    let pending = backend.request_code(&phone(number)).await.unwrap();
    let code = parse_sim_phone(number).unwrap().1;
    match pending.submit_code(&code).await {
        Ok(LoginStep::Done { session, me }) => (session, me),
        Ok(LoginStep::PasswordNeeded { .. }) => panic!("unexpected 2FA"),
        Err((e, _)) => panic!("sign-in failed: {e}"),
    }
}

async fn connect(backend: &SimBackend, session: &SessionData) -> Connection {
    backend
        .connect(session.clone(), None, Arc::new(NoSink))
        .await
        .unwrap()
}

#[test]
fn sim_numbers_follow_the_test_dc_convention() {
    assert_eq!(
        parse_sim_phone("+9996621234"),
        Some((2, "22222".into(), false))
    );
    assert_eq!(
        parse_sim_phone("+9996639123"),
        Some((3, "33333".into(), true))
    );
    assert_eq!(
        parse_sim_phone("+9996641234"),
        None,
        "DC 4 is not a test DC here"
    );
    assert_eq!(parse_sim_phone("+15551234567"), None);
}

#[actix_rt::test]
async fn sign_in_with_the_conventional_code_then_connect_as_that_user() {
    tokio::time::pause();
    let backend = SimBackend::default();
    let pending = backend.request_code(&phone("+9996621234")).await.unwrap();
    let Err((e, Some(pending))) = pending.submit_code("12345").await else {
        panic!("a wrong code keeps the login pending");
    };
    assert_eq!(e, TgError::CodeInvalid);
    let Ok(LoginStep::Done { session, me }) = pending.submit_code("22222").await else {
        panic!("the right code signs in");
    };
    assert_eq!(session.home_dc, 2);
    assert_eq!(session.user_id, Some(me.id));
    let conn = connect(&backend, &session).await;
    assert_eq!(conn.client.get_me().await.unwrap(), me);
    assert_eq!(backend.world.user_id("+9996621234"), Some(me.id));
}

#[actix_rt::test]
async fn two_step_numbers_need_the_password_and_codes_expire() {
    tokio::time::pause();
    let backend = SimBackend::default();
    let pending = backend.request_code(&phone("+9996619000")).await.unwrap();
    let Ok(LoginStep::PasswordNeeded { pending, .. }) = pending.submit_code("11111").await else {
        panic!("2FA expected");
    };
    let Err((e, Some(pending))) = pending.submit_password("wrong".to_owned().into()).await else {
        panic!("a wrong password keeps the login pending");
    };
    assert_eq!(e, TgError::PasswordInvalid);
    let done = pending
        .submit_password(SIM_2FA_PASSWORD.to_owned().into())
        .await;
    assert!(matches!(done, Ok(LoginStep::Done { .. })));

    let pending = backend.request_code(&phone("+9996621111")).await.unwrap();
    tokio::time::advance(CODE_TTL).await;
    assert!(matches!(
        pending.submit_code("22222").await,
        Err((TgError::CodeExpired, None))
    ));
    assert_eq!(
        backend.request_code(&phone("+15551234567")).await.err(),
        Some(TgError::PhoneNumberInvalid)
    );
}

#[actix_rt::test]
async fn echo_answers_saved_messages_keep_and_random_ids_deduplicate() {
    tokio::time::pause();
    let backend = SimBackend::new(SimWorld::new(Duration::from_millis(50)));
    let (session, me) = sign_in(&backend, "+9996621234").await;
    let mut conn = connect(&backend, &session).await;
    let client = conn.client.clone();

    let echo = client
        .resolve(&ChatRef::parse("@echo").unwrap())
        .await
        .unwrap();
    assert_eq!(echo.id, ECHO_USER_ID);
    let started = tokio::time::Instant::now();
    let opts = SendOptions {
        random_id: 42,
        ..SendOptions::default()
    };
    let sent = client.send_text(&echo, "hello", &opts).await.unwrap();
    // The configured latency, to within the 1 ms tick tokio's timer rounds
    // a deadline up to.
    let waited = started.elapsed();
    let latency = Duration::from_millis(50);
    assert!(
        waited >= latency && waited <= latency + Duration::from_millis(1),
        "the configured latency: {waited:?}"
    );
    assert!(sent.outgoing);
    let again = client.send_text(&echo, "hello", &opts).await.unwrap();
    assert_eq!(again, sent, "the same random_id is the same message");

    let Some(Incoming {
        update: Some(Update::NewMessage(answer)),
        state: None,
    }) = conn.updates.recv().await
    else {
        panic!("echo answers, with no update state (the sim keeps none)");
    };
    assert_eq!(
        (answer.chat_id, answer.sender_id, answer.text.as_str()),
        (ECHO_USER_ID, Some(ECHO_USER_ID), "hello")
    );
    assert!(!answer.outgoing);
    assert!(
        conn.updates.try_recv().is_err(),
        "one answer for one message"
    );
    let history = client.history(&echo, 10, None).await.unwrap();
    assert_eq!(
        history.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![answer.id, sent.id]
    );

    let saved = client.resolve(&ChatRef::Me).await.unwrap();
    assert_eq!((saved.id, saved.kind), (me.id, PeerKind::SelfChat));
    client
        .send_text(&saved, "note to self", &SendOptions::default())
        .await
        .unwrap();
    let notes = client.history(&saved, 10, None).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].text, "note to self");
    assert_eq!(
        client
            .resolve(&ChatRef::parse("@nobody_here").unwrap())
            .await,
        Err(TgError::PeerInvalid)
    );
}

#[actix_rt::test]
async fn injected_flood_waits_hit_their_scope_the_given_number_of_times() {
    tokio::time::pause();
    let backend = SimBackend::default();
    let (session, _) = sign_in(&backend, "+9996621234").await;
    let conn = connect(&backend, &session).await;
    let c = conn.client.clone();
    let echo = c.resolve(&ChatRef::parse("@echo").unwrap()).await.unwrap();
    let me = c.resolve(&ChatRef::Me).await.unwrap();
    let opts = SendOptions::default();

    backend.world.inject_flood(FloodRule {
        target: FloodTarget::Method("messages.sendMessage".into()),
        seconds: 31,
        times: 1,
    });
    assert_eq!(
        c.send_text(&echo, "x", &opts).await,
        Err(TgError::FloodWait {
            seconds: 31,
            scope: FloodScope::Account
        })
    );
    assert!(c.send_text(&echo, "x", &opts).await.is_ok(), "only once");

    backend.world.inject_flood(FloodRule {
        target: FloodTarget::Chat(ECHO_USER_ID),
        seconds: 10,
        times: 2,
    });
    for _ in 0..2 {
        assert_eq!(
            c.send_text(&echo, "x", &opts).await,
            Err(TgError::FloodWait {
                seconds: 10,
                scope: FloodScope::Chat {
                    chat_id: ECHO_USER_ID
                }
            })
        );
        assert!(
            c.send_text(&me, "x", &opts).await.is_ok(),
            "other chats are not affected"
        );
    }
    assert!(c.send_text(&echo, "x", &opts).await.is_ok());
    assert_eq!(backend.world.calls()["messages.sendMessage"], 7);
}

#[actix_rt::test]
async fn dropped_connections_revocations_and_duplicate_keys_are_reported() {
    tokio::time::pause();
    let backend = SimBackend::default();
    let (session, _) = sign_in(&backend, "+9996631234").await;

    let conn = connect(&backend, &session).await;
    assert_eq!(
        backend
            .connect(session.clone(), None, Arc::new(NoSink))
            .await
            .err(),
        Some(TgError::AuthKeyDuplicated),
        "one key, one connection"
    );
    backend.world.fail_next_calls(1);
    assert!(matches!(conn.client.ping().await, Err(TgError::Network(_))));
    assert!(
        matches!(conn.closed.await, TgError::Network(_)),
        "the connection died"
    );
    assert!(
        matches!(conn.client.ping().await, Err(TgError::Network(_))),
        "and stays dead"
    );
    drop(conn.client);

    let conn = connect(&backend, &session).await;
    assert!(conn.client.ping().await.is_ok(), "a new connection works");
    backend.world.revoke_sessions("+9996631234");
    assert_eq!(conn.closed.await, TgError::Revoked);
    conn.client.disconnect().await;
    assert_eq!(
        backend.connect(session, None, Arc::new(NoSink)).await.err(),
        Some(TgError::Revoked)
    );
}

#[actix_rt::test]
async fn known_numbers_sign_in_again_and_banned_ones_are_refused() {
    tokio::time::pause();
    let backend = SimBackend::default();
    let (_, first) = sign_in(&backend, "+9996621234").await;
    let (_, again) = sign_in(&backend, "+9996621234").await;
    assert_eq!(first.id, again.id, "the same Telegram user");
    backend.world.ban("+9996621234");
    assert_eq!(
        backend.request_code(&phone("+9996621234")).await.err(),
        Some(TgError::Banned)
    );
}

#[actix_rt::test]
async fn unknown_keys_are_refused_unless_adopted() {
    let world = SimWorld::default();
    let other = SimWorld::default();
    let session = other.authorize("+9996621234").unwrap();
    let backend = SimBackend::new(world.clone());
    let sink: Arc<dyn SessionSink> = Arc::new(NoSink);
    assert!(matches!(
        backend.connect(session.clone(), None, sink.clone()).await,
        Err(TgError::Unauthorized)
    ));
    world.adopt_unknown_keys(true);
    let conn = backend.connect(session.clone(), None, sink).await.unwrap();
    let me = conn.client.get_me().await.unwrap();
    assert_eq!(Some(me.id), session.user_id);
}
