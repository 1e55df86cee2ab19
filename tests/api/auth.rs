//! Users and tokens: register, login, logout-all, token checks, the login
//! rate limit, JWT key rotation and the admin role.

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::Duration;
use tgvisor::security::jwt::{JwtKeys, Role};

async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("a JSON error body");
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[actix_rt::test]
async fn register_login_and_logout_all_revokes_every_token_at_once() {
    let app = spawn_app().await;

    let res = app
        .post_json(
            "/api/v1/auth/register",
            None,
            &json!({"username": "alice", "email": "Alice@Example.COM", "password": "correct horse"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["username"], "alice");
    assert_eq!(
        user["email"], "Alice@example.com",
        "the domain is lowercased"
    );
    assert_eq!(user["role"], "user");
    assert!(user.get("password_hash").is_none());

    let res = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({"username": "ALICE", "password": "correct horse"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86_400, "24 h tokens");
    let first = body["token"].as_str().unwrap().to_owned();
    let second = app.login_with("alice", "correct horse").await;

    for token in [&first, &second] {
        assert_eq!(app.get_auth("/api/v1/accounts", token).await.status(), 200);
    }
    let res = app
        .post_json("/api/v1/auth/logout-all", Some(&first), &json!({}))
        .await;
    assert_eq!(res.status().as_u16(), 204);

    for token in [&first, &second] {
        let (status, code) = error_code(app.get_auth("/api/v1/accounts", token).await).await;
        assert_eq!((status, code.as_str()), (401, "token_revoked"));
    }
    let fresh = app.login_with("alice", "correct horse").await;
    assert_eq!(app.get_auth("/api/v1/accounts", &fresh).await.status(), 200);
    app.stop().await;
}

impl TestApp {
    async fn login_with(&self, username: &str, password: &str) -> String {
        let res = self
            .post_json(
                "/api/v1/auth/login",
                None,
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(res.status().as_u16(), 200);
        let body: Value = res.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }
}

#[actix_rt::test]
async fn registration_validates_input_and_refuses_duplicates_regardless_of_case() {
    let app = spawn_app().await;
    app.register("bob").await;

    let cases = [
        (
            json!({"username": "bo", "email": "b@example.com", "password": "long enough"}),
            400,
            "username",
            "too_short",
        ),
        (
            json!({"username": "x".repeat(51), "email": "b@example.com", "password": "long enough"}),
            400,
            "username",
            "too_long",
        ),
        (
            json!({"username": "bad name", "email": "b@example.com", "password": "long enough"}),
            400,
            "username",
            "invalid_chars",
        ),
        (
            json!({"username": "carol", "email": "not-an-email", "password": "long enough"}),
            400,
            "email",
            "",
        ),
        (
            json!({"username": "carol", "email": "c@example.com", "password": "short"}),
            400,
            "password",
            "too_short",
        ),
        (
            json!({"username": "carol", "email": "c@example.com", "password": "p".repeat(129)}),
            400,
            "password",
            "too_long",
        ),
    ];
    for (body, status, field, reason) in cases {
        let res = app.post_json("/api/v1/auth/register", None, &body).await;
        assert_eq!(res.status().as_u16(), status, "{body}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"]["code"], "invalid_input", "{body}");
        assert_eq!(err["error"]["field"], field, "{body}");
        if !reason.is_empty() {
            assert_eq!(err["error"]["reason"], reason, "{body}");
        }
        let message = err["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("long enough") && !message.contains("ppppp"),
            "{message}"
        );
    }

    app.register("Émile").await;
    for body in [
        json!({"username": "BOB", "email": "other@example.com", "password": "long enough"}),
        json!({"username": "robert", "email": "BOB@example.com", "password": "long enough"}),
        json!({"username": "éMILE", "email": "emile2@example.com", "password": "long enough"}),
    ] {
        let (status, code) =
            error_code(app.post_json("/api/v1/auth/register", None, &body).await).await;
        assert_eq!((status, code.as_str()), (409, "user_exists"), "{body}");
    }
    app.stop().await;
}

#[actix_rt::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    app.register("dave").await;

    let wrong = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({"username": "dave", "password": "not dave's"}),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({"username": "nobody", "password": "not dave's"}),
        )
        .await;
    let invalid = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({"username": "x", "password": ""}),
        )
        .await;

    let mut bodies = Vec::new();
    for res in [wrong, unknown, invalid] {
        assert_eq!(res.status().as_u16(), 401);
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_credentials");
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
    app.stop().await;
}

/// Logs in as `username` from `ip` (through the trusted loopback proxy).
async fn login_from(app: &TestApp, ip: &str, username: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

#[actix_rt::test]
async fn the_sixth_bad_login_in_15_minutes_gets_429_per_client_address() {
    let app = spawn_app_with(|f| f.merge(("server.trusted_proxies", vec!["127.0.0.1"]))).await;
    app.register("erin").await;
    let attacker = "203.0.113.7";
    let erin = "198.51.100.20";

    for i in 0..5 {
        let res = login_from(&app, attacker, "erin", "guess").await;
        assert_eq!(res.status().as_u16(), 401, "attempt {}", i + 1);
    }
    let res = login_from(&app, attacker, "erin", "guess").await;
    assert_eq!(res.status().as_u16(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((890..=900).contains(&retry), "Retry-After {retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(body["error"]["retry_after_ms"].as_u64().unwrap() > 880_000);

    // Even the right password is refused from the blocked address.
    let res = login_from(&app, attacker, "erin", "password-erin").await;
    assert_eq!(res.status().as_u16(), 429);
    // Erin, from her own address, is not locked out, and her success does
    // not reset the attacker's counter.
    let res = login_from(&app, erin, "erin", "password-erin").await;
    assert_eq!(res.status().as_u16(), 200);
    let res = login_from(&app, attacker, "erin", "guess").await;
    assert_eq!(res.status().as_u16(), 429);
    // Other usernames from the attacker's address share its counter: a
    // spray of made-up names is refused like one name, before any argon2.
    for name in ["someone-else", "erin2", "zz-random-91"] {
        let res = login_from(&app, attacker, name, "guess").await;
        assert_eq!(res.status().as_u16(), 429, "{name}");
    }
    app.stop().await;
}

#[actix_rt::test]
async fn a_forwarded_for_header_from_an_untrusted_peer_is_ignored() {
    let app = spawn_app().await; // no trusted proxies
    app.register("frank").await;
    for i in 0..5 {
        let ip = format!("203.0.113.{i}");
        assert_eq!(login_from(&app, &ip, "frank", "guess").await.status(), 401);
    }
    // Rotating the header did not give five fresh counters.
    assert_eq!(
        login_from(&app, "203.0.113.99", "frank", "guess")
            .await
            .status(),
        429
    );
    app.stop().await;
}

fn keys(app: &TestApp, audience: &str, kid: &str, secret: SecretString) -> JwtKeys {
    JwtKeys::new(
        app.settings.auth.issuer.clone(),
        audience,
        Duration::from_secs(86_400),
        kid,
        vec![(kid.to_owned(), secret)],
    )
    .unwrap()
}

fn app_key(app: &TestApp, kid: &str) -> SecretString {
    app.settings.secrets.jwt.as_ref().unwrap().keys[kid].clone()
}

#[actix_rt::test]
async fn expired_foreign_wrong_audience_and_malformed_tokens_are_refused() {
    let app = spawn_app().await;
    let (id, good) = app.user("grace").await;
    let now = chrono::Utc::now().timestamp();
    let aud = app.settings.auth.audience.clone();
    let ours = keys(&app, &aud, "k1", app_key(&app, "k1"));

    let expired = ours.issue(id, Role::User, 0, now - 2 * 86_400).unwrap().0;
    let wrong_audience = keys(&app, "someone-else", "k1", app_key(&app, "k1"))
        .issue(id, Role::User, 0, now)
        .unwrap()
        .0;
    let foreign_key = keys(
        &app,
        &aud,
        "k1",
        SecretString::from(tgvisor::config::random_key()),
    )
    .issue(id, Role::User, 0, now)
    .unwrap()
    .0;
    let unknown_kid = keys(&app, &aud, "k9", app_key(&app, "k1"))
        .issue(id, Role::User, 0, now)
        .unwrap()
        .0;
    let admin_claim = ours.issue(id, Role::Admin, 0, now).unwrap().0;

    for (token, code) in [
        (expired.as_str(), "token_expired"),
        (wrong_audience.as_str(), "token_invalid_audience"),
        (foreign_key.as_str(), "token_bad_signature"),
        (unknown_kid.as_str(), "token_unknown_key"),
        ("not.a.token", "token_malformed"),
    ] {
        let (status, got) = error_code(app.get_auth("/api/v1/accounts", token).await).await;
        assert_eq!((status, got.as_str()), (401, code));
    }
    // No header, another scheme, or the token in the query string: no token.
    let no_header = app.get("/api/v1/accounts").await;
    let basic = app
        .client
        .get(app.url("/api/v1/accounts"))
        .header("authorization", format!("Basic {good}"))
        .send()
        .await
        .unwrap();
    let in_query = app.get(&format!("/api/v1/accounts?token={good}")).await;
    for res in [no_header, basic, in_query] {
        let (status, code) = error_code(res).await;
        assert_eq!((status, code.as_str()), (401, "token_missing"));
    }
    // A forged role claim grants nothing: the role comes from the database.
    let (status, code) = error_code(app.get_auth("/api/v1/audit", &admin_claim).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    assert_eq!(app.get_auth("/api/v1/accounts", &good).await.status(), 200);
    app.stop().await;
}

#[actix_rt::test]
async fn rotating_the_jwt_key_keeps_old_tokens_valid_until_the_old_key_is_removed() {
    let app = spawn_app().await;
    let (_, old_token) = app.user("heidi").await;
    let k2 = tgvisor::config::random_key();

    let app = {
        let k2 = k2.clone();
        app.restart(move |f| {
            f.merge(("secrets.jwt.active", "k2"))
                .merge(("secrets.jwt.keys.k2", k2))
        })
        .await
    };
    assert_eq!(
        app.get_auth("/api/v1/accounts", &old_token).await.status(),
        200
    );
    let new_token = app.login("heidi").await;
    assert_eq!(kid(&new_token), "k2");
    assert_eq!(kid(&old_token), "k1");

    // Retire k1: its tokens stop working, k2's keep working.
    let app = app
        .restart(move |f| {
            // Figment layers cannot delete a key: rebuild without secrets.jwt.
            let mut all: figment::value::Dict = f.extract().unwrap();
            if let Some(figment::value::Value::Dict(_, secrets)) = all.get_mut("secrets") {
                secrets.remove("jwt");
            }
            figment::Figment::from(figment::providers::Serialized::defaults(all))
                .merge(("secrets.jwt.active", "k2"))
                .merge(("secrets.jwt.keys.k2", k2))
        })
        .await;
    let (status, code) = error_code(app.get_auth("/api/v1/accounts", &old_token).await).await;
    assert_eq!((status, code.as_str()), (401, "token_unknown_key"));
    assert_eq!(
        app.get_auth("/api/v1/accounts", &new_token).await.status(),
        200
    );
    app.stop().await;
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[actix_rt::test]
async fn admin_routes_need_the_admin_role_and_a_role_change_revokes_tokens() {
    let app = spawn_app().await;
    let (_, token) = app.user("ivan").await;
    let _ = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({"username": "ivan", "password": "nope-nope"}),
        )
        .await;

    let (status, code) = error_code(app.get_auth("/api/v1/audit", &token).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));

    tgvisor::ops::set_role(&app.settings, "ivan", Role::Admin)
        .await
        .unwrap();
    // The CLI ran in another "process": this node learns of it within the
    // cache TTL at the latest; a newer token (higher version) reloads at once.
    let admin_token = app.login("ivan").await;
    let res = app.get_auth("/api/v1/audit?limit=50", &admin_token).await;
    assert_eq!(res.status().as_u16(), 200);
    let entries: Vec<Value> = res.json().await.unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("user.register", "success"),
        ("auth.login", "success"),
        ("auth.login", "failure"),
        ("user.role", "success"),
    ] {
        assert!(
            actions.contains(&expected),
            "{expected:?} missing from {actions:?}"
        );
    }
    let serialized = serde_json::to_string(&entries).unwrap();
    assert!(!serialized.contains("password-ivan") && !serialized.contains("nope-nope"));
    assert!(!serialized.contains(&token));
    app.stop().await;
}

#[actix_rt::test]
async fn a_demotion_by_the_cli_closes_admin_routes_at_once() {
    let app = spawn_app().await;
    app.register("judy").await;
    tgvisor::ops::set_role(&app.settings, "judy", Role::Admin)
        .await
        .unwrap();
    let token = app.login("judy").await;
    assert_eq!(app.get_auth("/api/v1/audit", &token).await.status(), 200);

    // The CLI is another process: this server's cache does not hear of it.
    tgvisor::ops::set_role(&app.settings, "judy", Role::User)
        .await
        .unwrap();
    let (status, code) = error_code(app.get_auth("/api/v1/audit", &token).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    app.stop().await;
}

#[actix_rt::test]
async fn registrations_are_limited_per_client_ip() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.register(&format!("user{i}")).await;
    }
    let res = app
        .post_json(
            "/api/v1/auth/register",
            None,
            &json!({"username": "user5", "email": "u5@example.com", "password": "long enough"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 429);
    assert!(res.headers().contains_key("retry-after"));
    app.stop().await;
}

#[actix_rt::test]
async fn the_client_ip_is_the_nearest_untrusted_forwarded_hop() {
    let app = spawn_app_with(|f| f.merge(("server.trusted_proxies", vec!["127.0.0.1"]))).await;
    app.register("kim").await;
    // The client wrote the first entries itself; our proxy appended the last.
    for i in 0..5 {
        let res = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("10.9.9.{i}, 203.0.113.50"))
            .json(&json!({"username": "kim", "password": "guess"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401);
    }
    let res = login_from(&app, "203.0.113.50", "kim", "guess").await;
    assert_eq!(
        res.status().as_u16(),
        429,
        "forged entries did not buy fresh counters"
    );
    app.stop().await;
}

/// Polls `path` with `token` until it answers `status` (bounded).
async fn until_status(app: &TestApp, path: &str, token: &str, status: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = app.get_auth(path, token).await.status().as_u16();
        if got == status {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} still answers {got}, not {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn a_role_change_by_the_cli_revokes_old_tokens_within_the_revocation_check() {
    let app = spawn_app().await;
    let (_, token) = app.user("kim").await;
    assert_eq!(app.get_auth("/api/v1/accounts", &token).await.status(), 200);

    // Another process: this server's cache does not hear of it, and stops
    // trusting what it cached after auth.revocation_check_ms (1 s; it was
    // the 5-minute cache TTL).
    tgvisor::ops::set_role(&app.settings, "kim", Role::Admin)
        .await
        .unwrap();

    until_status(&app, "/api/v1/accounts", &token, 401).await;
    let (status, code) = error_code(app.get_auth("/api/v1/accounts", &token).await).await;
    assert_eq!((status, code.as_str()), (401, "token_revoked"));
    app.stop().await;
}

/// Deletes a user's row behind the service's back, as an operator would.
async fn delete_user(app: &TestApp, id: i64) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    tgvisor::entities::user::Entity::delete_many()
        .filter(tgvisor::entities::user::Column::Id.eq(id))
        .exec(&app.db_conn().await)
        .await
        .unwrap();
}

#[actix_rt::test]
async fn a_deleted_users_token_is_401_never_a_500() {
    // A long revocation check: the token is still trusted from the cache
    // when the user's row is gone, which is what the insert must survive.
    let app = spawn_app_with(|f| f.merge(("auth.revocation_check_ms", 600_000))).await;
    let (id, token) = app.user("lou").await;
    assert_eq!(app.get_auth("/api/v1/accounts", &token).await.status(), 200);
    delete_user(&app, id).await;

    let res = app
        .post_json(
            "/api/v1/accounts",
            Some(&token),
            &json!({ "phone": "+9996621234" }),
        )
        .await;
    let (status, code) = error_code(res).await;
    assert_eq!((status, code.as_str()), (401, "token_revoked"));
    let res = app
        .post_json(
            "/api/v1/accounts/import",
            Some(&token),
            &json!({"phone": "+9996625555", "session": crate::helpers::accounts::telethon_session(&crate::helpers::accounts::auth_key(1))}),
        )
        .await;
    let (status, code) = error_code(res).await;
    assert_eq!((status, code.as_str()), (401, "token_revoked"));
    app.stop().await;
}

#[actix_rt::test]
async fn a_deleted_users_token_stops_working_within_the_revocation_check() {
    let app = spawn_app().await;
    let (id, token) = app.user("max").await;
    assert_eq!(app.get_auth("/api/v1/accounts", &token).await.status(), 200);
    delete_user(&app, id).await;

    until_status(&app, "/api/v1/accounts", &token, 401).await;
    app.stop().await;
}

#[actix_rt::test]
async fn a_lookalike_of_an_existing_name_mixing_scripts_cannot_register() {
    let app = spawn_app().await;
    app.register("alice").await;
    let res = app
        .post_json(
            "/api/v1/auth/register",
            None,
            &json!({"username": "\u{430}lice", "email": "a2@example.com", "password": "long enough"}),
        )
        .await;
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "username");
    assert_eq!(body["error"]["reason"], "mixed_scripts");
    app.stop().await;
}
