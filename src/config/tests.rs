// figment's Jail fixes the closures' error type; its size is not ours to choose.
#![allow(clippy::result_large_err)]

use super::*;
use figment::Figment;
use figment::Jail;
use secrecy::ExposeSecret;
use std::time::Duration;

fn defaults() -> Settings {
    Settings::from_defaults(Environment::Test, Figment::new()).expect("defaults load")
}

#[test]
fn defaults_carry_the_documented_limits() {
    let s = defaults();
    let t = &s.rate_limits.telegram;
    assert_eq!(
        (
            t.messages_sent.window_ms,
            t.messages_sent.max,
            t.messages_sent.per_chat
        ),
        (Duration::from_millis(60_000), 30, 20)
    );
    assert_eq!(
        (t.media_uploads.max, t.media_uploads.max_size),
        (10, 50 * 1024 * 1024)
    );
    assert_eq!(
        (t.channel_invites.window_ms, t.channel_invites.max),
        (Duration::from_millis(86_400_000), 50)
    );
    let a = &s.rate_limits.api;
    assert_eq!(
        (a.standard.window_ms, a.standard.max),
        (Duration::from_millis(60_000), 100)
    );
    assert_eq!(
        (a.auth.window_ms, a.auth.max),
        (Duration::from_millis(900_000), 5)
    );
    let w = &s.rate_limits.websocket;
    assert_eq!((w.connections.per_user, w.connections.total), (3, 1000));
    assert_eq!((w.messages.max, w.messages.max_size), (100, 4096));
    let f = &s.rate_limits.flood_wait;
    assert_eq!(
        (f.margin_ms, f.short_threshold_ms),
        (Duration::from_millis(1_000), Duration::from_millis(30_000))
    );
    assert_eq!(
        (
            s.database.max_connections,
            s.database.idle_timeout_ms,
            s.database.connect_timeout_ms
        ),
        (
            20,
            Duration::from_millis(30_000),
            Duration::from_millis(2_000)
        )
    );
    assert_eq!(
        s.websocket.heartbeat_interval_ms,
        Duration::from_millis(30_000)
    );
    // Not the 5 clients of the design sketch's demo cache: a node's worth (README, bench-accounts).
    assert_eq!(s.telegram.client_pool_size, 500);
    assert_eq!(s.telegram.max_clients_per_user, 50);
    assert_eq!(
        s.telegram.max_session_age_ms,
        Duration::from_millis(7 * 24 * 3600 * 1000)
    );
    assert_eq!(
        s.telegram.health_check_interval_ms,
        Duration::from_millis(5 * 60 * 1000)
    );
}

#[test]
fn defaults_carry_the_documented_thresholds_and_alerting_matrix() {
    let s = defaults();
    let th = &s.thresholds;
    assert_eq!(
        th.websocket.message_latency,
        LatencyLevels {
            warning_ms: Duration::from_millis(100),
            critical_ms: Duration::from_millis(500)
        }
    );
    assert_eq!(
        th.websocket.error_rate,
        Levels {
            warning: 0.01,
            critical: 0.05
        }
    );
    assert_eq!(
        th.websocket.reconnect_rate,
        Levels {
            warning: 0.1,
            critical: 0.3
        }
    );
    assert_eq!(
        th.telegram.flood_wait,
        Levels {
            warning: 5.0,
            critical: 20.0
        }
    );
    assert_eq!(
        th.telegram.dc_latency,
        LatencyLevels {
            warning_ms: Duration::from_millis(1000),
            critical_ms: Duration::from_millis(3000)
        }
    );
    assert_eq!(
        (
            th.response_time.api.p95_ms,
            th.response_time.api.p99_ms,
            th.response_time.api.max_ms
        ),
        (
            Duration::from_millis(500),
            Duration::from_millis(1000),
            Duration::from_millis(2000)
        )
    );
    assert_eq!(
        th.resource.memory,
        Levels {
            warning: 0.7,
            critical: 0.85
        }
    );
    assert_eq!(th.connection_pool.database.min_available, 2);
    assert_eq!(th.slow_query.log_ms, Duration::from_millis(200));
    let high = &s.alerting.high;
    assert_eq!(high.channels, ["slack", "email"]);
    assert!(high.escalation);
    assert_eq!(
        (high.retry_interval_ms, high.max_retries),
        (Duration::from_millis(300_000), 3)
    );
    assert_eq!(
        (s.alerting.low.retry_interval_ms, s.alerting.low.max_retries),
        (Duration::from_millis(3_600_000), 1)
    );
    assert_eq!(s.alerting.rules.errors.threshold, 10);
    assert_eq!(
        s.supervision.policy().backoff.base,
        Duration::from_millis(100)
    );
    assert_eq!(s.supervision.policy().backoff.cap, Duration::from_secs(30));
}

#[test]
fn an_unknown_key_is_an_error_naming_it() {
    let err =
        Settings::from_defaults(Environment::Test, Figment::from(("server.prot", 1))).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("prot"), "{msg}");
    assert!(msg.contains("server"), "{msg}");
}

#[test]
fn a_value_of_the_wrong_type_is_an_error_naming_the_key() {
    let err = Settings::from_defaults(Environment::Test, Figment::from(("server.port", "eighty")))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("server.port"), "{msg}");
}

#[test]
fn environment_variables_override_files() {
    Jail::expect_with(|jail| {
        jail.set_env("TGVISOR_ENV", "test");
        jail.set_env("TGVISOR__RATE_LIMITS__TELEGRAM__MESSAGES_SENT__MAX", "12");
        jail.set_env("TGVISOR__SERVER__PORT", "9999");
        jail.create_dir("config")?;
        jail.create_file("config/test.toml", "[server]\nport = 7000\nworkers = 3\n")?;
        let s = Settings::load().expect("loads");
        assert_eq!(s.environment, Environment::Test);
        assert_eq!(s.rate_limits.telegram.messages_sent.max, 12);
        assert_eq!(s.server.port, 9999);
        assert_eq!(s.server.workers, 3);
        Ok(())
    });
}

#[test]
fn an_unknown_environment_variable_key_is_refused() {
    Jail::expect_with(|jail| {
        jail.set_env("TGVISOR__SERVER__PROT", "1");
        let err = Settings::load_for(Environment::Test)
            .unwrap_err()
            .to_string();
        assert!(err.contains("prot"), "{err}");
        Ok(())
    });
}

#[test]
fn production_refuses_to_start_without_secrets_and_a_database() {
    Jail::expect_with(|_jail| {
        let err = Settings::load_for(Environment::Production)
            .unwrap_err()
            .to_string();
        for key in [
            "secrets.password_pepper",
            "secrets.jwt",
            "secrets.session",
            "database.url",
        ] {
            assert!(err.contains(key), "{key} missing from: {err}");
        }
        Ok(())
    });
}

#[test]
fn production_starts_with_secrets_from_the_environment() {
    Jail::expect_with(|jail| {
        jail.set_env("TGVISOR__SECRETS__PASSWORD_PEPPER", random_key());
        jail.set_env("TGVISOR__SECRETS__JWT__ACTIVE", "k2");
        jail.set_env("TGVISOR__SECRETS__JWT__KEYS__K2", random_key());
        jail.set_env("TGVISOR__SECRETS__SESSION__ACTIVE", "s1");
        jail.set_env("TGVISOR__SECRETS__SESSION__KEYS__S1", random_key());
        jail.set_env("TGVISOR__DATABASE__URL", "postgres://u:hunter2@db/tgvisor");
        let s = Settings::load_for(Environment::Production).expect("loads");
        assert_eq!(
            s.telemetry.format,
            LogFormat::Pretty,
            "no config dir in the jail"
        );
        assert_eq!(s.secrets.jwt.as_ref().unwrap().active, "k2");
        assert!(s.secrets.jwt.as_ref().unwrap().keys.contains_key("k2"));
        assert_eq!(s.database_url(), "postgres://u:hunter2@db/tgvisor");
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("hunter2"),
            "the database password leaked into Debug"
        );
        let pepper = s
            .secrets
            .password_pepper
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned();
        assert!(!debug.contains(&pepper), "the pepper leaked into Debug");
        Ok(())
    });
}

#[test]
fn development_generates_secrets_once_and_keeps_them() {
    Jail::expect_with(|jail| {
        jail.set_env("TGVISOR__DATA_DIR", "devdata");
        let first = Settings::load_for(Environment::Development).expect("loads");
        let second = Settings::load_for(Environment::Development).expect("loads again");
        let pepper = |s: &Settings| {
            s.secrets
                .password_pepper
                .as_ref()
                .unwrap()
                .expose_secret()
                .to_owned()
        };
        assert_eq!(pepper(&first), pepper(&second));
        assert!(first.secrets.missing().is_empty());
        let file = jail.directory().join("devdata").join(DEV_SECRETS_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(
            first
                .database_url()
                .starts_with("sqlite://devdata/tgvisor.db")
        );
        Ok(())
    });
}

#[test]
fn a_duration_key_takes_whole_milliseconds_from_files_and_the_environment() {
    let s = Settings::from_defaults(
        Environment::Test,
        Figment::from(("outbox.retention_ms", 1_234)),
    )
    .expect("loads");
    assert_eq!(s.outbox.retention_ms, Duration::from_millis(1_234));
    Jail::expect_with(|jail| {
        jail.set_env("TGVISOR__OUTBOX__RETENTION_MS", "5678");
        let s = Settings::load_for(Environment::Test).expect("loads");
        assert_eq!(s.outbox.retention_ms, Duration::from_millis(5_678));
        Ok(())
    });
}

#[test]
fn a_bad_duration_is_an_error_naming_the_key() {
    for bad in [
        Figment::from(("outbox.retention_ms", -1)),
        Figment::from(("outbox.retention_ms", "soon")),
        Figment::from(("outbox.retention_ms", 1.5)),
    ] {
        let msg = Settings::from_defaults(Environment::Test, bad)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("outbox.retention_ms"), "{msg}");
        assert!(msg.contains("u64"), "{msg}");
    }
}

#[test]
fn a_refused_zero_duration_stays_refused() {
    let msg = Settings::from_defaults(
        Environment::Test,
        Figment::from(("health.check_timeout_ms", 0)),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("check_timeout_ms > 0"), "{msg}");
}

#[test]
fn durations_serialize_as_whole_milliseconds() {
    let s = defaults();
    let outbox = serde_json::to_value(&s.outbox).expect("serializes");
    assert_eq!(
        outbox["retention_ms"],
        serde_json::json!(s.outbox.retention_ms.as_millis() as u64)
    );
    assert!(outbox["retry_base_ms"].is_u64(), "{outbox}");
}
