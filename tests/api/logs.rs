//! Secrets never reach the logs: everything a login, a failed login, an
//! account import (a session write), a revocation and a refused token log,
//! at every level, searched for the secrets involved.

use crate::helpers::accounts::{auth_key, telethon_session};
use crate::helpers::spawn_app_with;
use base64::Engine;
use secrecy::ExposeSecret;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tgvisor::config::LogFormat;
use tgvisor::telemetry::LogLayer;
use tracing_subscriber::layer::SubscriberExt;

/// Collects every log line in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[actix_rt::test]
async fn a_login_and_a_session_write_leave_no_secret_in_the_logs() {
    let captured = Captured::default();
    // Every level of every crate (the HTTP server, sqlx, sea-orm included).
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::TRACE)
        .with(LogLayer::new(captured.clone(), LogFormat::Json));
    tracing::subscriber::set_global_default(subscriber)
        .expect("this test owns the process's subscriber (nextest runs one test per process)");

    let app = spawn_app_with(|f| f.merge(("telemetry.filter", "trace"))).await;
    let password = "Tr0ub4dor&3-horse";
    let phone = "+447700900461";
    let key = auth_key(99);
    let session = telethon_session(&key);

    let res = app
        .post_json(
            "/api/v1/auth/register",
            None,
            &json!({"username": "logcheck", "email": "log@example.com", "password": password}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let res = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({"username": "logcheck", "password": "wrong-password-77"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 401);
    let res = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({"username": "logcheck", "password": password}),
        )
        .await;
    let token = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post_json(
            "/api/v1/accounts/import",
            Some(&token),
            &json!({"phone": phone, "session": session}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let res = app
        .post_json("/api/v1/auth/logout-all", Some(&token), &json!({}))
        .await;
    assert_eq!(res.status().as_u16(), 204);
    // A revoked token, and one in the query string.
    let res = app.get_auth("/api/v1/accounts", &token).await;
    assert_eq!(res.status().as_u16(), 401);
    let res = app.get(&format!("/api/v1/accounts?token={token}")).await;
    assert_eq!(res.status().as_u16(), 401);
    let secrets = &app.settings.secrets;
    let configured: Vec<String> = vec![
        secrets
            .password_pepper
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned(),
        secrets.jwt.as_ref().unwrap().keys["k1"]
            .expose_secret()
            .to_owned(),
        secrets.session.as_ref().unwrap().keys["k1"]
            .expose_secret()
            .to_owned(),
    ];
    app.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The capture works: the events we expect are there.
    for expected in [
        "login succeeded",
        "login failed",
        "account imported",
        "all tokens revoked",
    ] {
        assert!(logs.contains(expected), "missing log line {expected:?}");
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let signature = token.rsplit('.').next().unwrap();
    let secrets: Vec<(&str, String)> = vec![
        ("password", password.to_owned()),
        ("wrong password", "wrong-password-77".to_owned()),
        ("token", token.clone()),
        ("token signature", signature.to_owned()),
        ("phone", phone.to_owned()),
        ("phone digits", phone[1..].to_owned()),
        ("national number", "7700900461".to_owned()),
        ("session string", session[..40].to_owned()),
        ("auth key (base64)", b64.encode(key)[..24].to_owned()),
        (
            "auth key (hex)",
            key[..12].iter().map(|b| format!("{b:02x}")).collect(),
        ),
        ("password pepper", configured[0].clone()),
        ("JWT key", configured[1].clone()),
        ("session key", configured[2].clone()),
    ];
    for (what, secret) in secrets {
        assert!(!logs.contains(&secret), "the {what} reached the logs");
    }
}
