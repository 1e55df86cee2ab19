//! The alert router against real receivers on loopback: an HTTP server
//! standing in for Slack, the webhook and Alertmanager, and a real SMTP
//! server for e-mail. Timing uses short real intervals; every wait is for a
//! delivery, never a fixed sleep.

use crate::helpers::alerts::{Receiver, routed};
use crate::helpers::{TestApp, spawn_app_with};
use figment::Figment;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use tgvisor::alerts::{NewAlert, Severity};

fn alert(fp: &str, severity: Severity) -> NewAlert {
    NewAlert {
        fingerprint: fp.to_owned(),
        name: format!("{fp}_alert"),
        severity,
        summary: format!("{fp} is on fire"),
        labels: BTreeMap::from([("component".to_owned(), fp.to_owned())]),
    }
}

/// The test's own alerts in a notification (the health monitor's, should
/// a component not be healthy on this machine, are left out).
fn names(body: &Value) -> Vec<String> {
    let mut n: Vec<String> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .filter(|n| n.ends_with("_alert"))
        .collect();
    n.sort();
    n
}

/// The medium alerts firing as the gauge counts them, and the
/// fingerprints the store lists as firing.
async fn firing_medium(app: &TestApp) -> (i64, Vec<String>) {
    let line = app
        .metrics()
        .await
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"tgvisor_alerts_firing{severity="medium"} "#)
                .map(str::to_owned)
        })
        .expect("the firing gauge");
    let mut listed: Vec<String> = app
        .alerts
        .list(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.severity == "medium" && a.status != "resolved")
        .map(|a| a.fingerprint)
        .collect();
    listed.sort();
    (line.parse().unwrap(), listed)
}

/// Whether `/metrics` shows `line`, within 10 s: a delivery's counter
/// moves once the client has read the receiver's answer, which comes after
/// the receiver saw the request.
async fn metric(app: &TestApp, line: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if app.metrics().await.lines().any(|l| l == line) {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn a_burst_is_one_notification_per_channel_and_resolving_sends_a_resolution() {
    let mut r = Receiver::start().await;
    let app = spawn_app_with(|f| routed(f, &r.url)).await;
    // Two alerts and many samples of the first: one notification.
    for _ in 0..5 {
        app.alerts.raise(alert("db", Severity::Medium));
    }
    app.alerts.raise(alert("ws", Severity::Medium));
    let (body, others) = r.next_to("/webhook").await;
    assert_eq!(body["status"], "firing");
    assert_eq!(body["kind"], "firing");
    assert_eq!(names(&body), ["db_alert", "ws_alert"]);
    assert_eq!(body["alerts"][0]["labels"]["component"], "db");
    let slack = match others.into_iter().find(|(p, _)| p == "/slack") {
        Some((_, b)) => b,
        None => r.next_to("/slack").await.0,
    };
    let text = slack["text"].as_str().unwrap();
    assert!(text.contains("FIRING: 2 alerts"), "{text}");
    assert!(text.contains("db is on fire"), "{text}");
    let (gauge, listed) = firing_medium(&app).await;
    assert_eq!(gauge as usize, listed.len());
    assert!(listed.contains(&"db".to_owned()) && listed.contains(&"ws".to_owned()));
    // Raising what fires changes nothing; resolving both: one resolution
    // per channel, and it is the next thing the webhook sees.
    app.alerts.raise(alert("db", Severity::Medium));
    app.alerts.resolve("db");
    app.alerts.resolve("ws");
    app.alerts.resolve("never-raised");
    let (body, _) = r.next_to("/webhook").await;
    assert_eq!(body["status"], "resolved");
    assert_eq!(names(&body), ["db_alert", "ws_alert"]);
    let (gauge, listed) = firing_medium(&app).await;
    assert_eq!(gauge as usize, listed.len());
    assert!(!listed.contains(&"db".to_owned()) && !listed.contains(&"ws".to_owned()));
    assert!(
        metric(
            &app,
            r#"tgvisor_alert_notifications_total{channel="webhook",result="ok"} 2"#
        )
        .await
    );
    let resolved = app.alerts.list(Some("resolved"), 10).await.unwrap();
    assert_eq!(resolved.len(), 2);
    assert!(resolved.iter().all(|a| a.resolved_at.is_some()));
    app.stop().await;
    r.server.stop(true).await;
}

#[actix_rt::test]
async fn an_unacknowledged_high_alert_repeats_then_escalates_and_an_ack_stops_it() {
    let mut r = Receiver::start().await;
    let app = spawn_app_with(|f| {
        routed(f, &r.url).merge(("alerting.channels.alertmanager.refresh_ms", 300))
    })
    .await;
    let admin = app.admin("oncall").await;
    app.alerts.raise(alert("root", Severity::High));
    let (first, _) = r.next_to("/webhook").await;
    assert_eq!(first["kind"], "firing");
    let id = first["alerts"][0]["id"].as_i64().unwrap();
    // One retry a second later, then the next tier (Alertmanager's API).
    let (repeat, _) = r.next_to("/webhook").await;
    assert_eq!(repeat["kind"], "repeat");
    let (escalated, _) = r.next_to("/api/v2/alerts").await;
    let am = &escalated[0];
    assert_eq!(am["labels"]["alertname"], "root_alert");
    assert_eq!(am["labels"]["severity"], "high");
    assert_eq!(am["annotations"]["summary"], "root is on fire");
    let view = app.alerts.list(Some("firing"), 10).await.unwrap();
    // Tier 1 (its repeat may already have gone out too).
    let ours = view.iter().find(|a| a.fingerprint == "root").unwrap();
    assert_eq!(ours.tier, 1);
    // Acknowledged: nothing more until it resolves; the resolution goes to
    // every channel it reached.
    let res = app
        .post_json(
            &format!("/api/v1/alerts/{id}/ack"),
            Some(&admin),
            &Value::Null,
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let acked: Value = res.json().await.unwrap();
    assert_eq!(acked["status"], "acknowledged");
    assert!(acked["next_notify_at"].is_null());
    // Acknowledged, it still fires: Alertmanager keeps being told (else it
    // would resolve it on its own after endsAt). Of two refreshes, at most
    // one went out before the ack.
    r.next_to("/api/v2/alerts").await;
    let (refreshed, _) = r.next_to("/api/v2/alerts").await;
    let ends =
        chrono::DateTime::parse_from_rfc3339(refreshed[0]["endsAt"].as_str().unwrap()).unwrap();
    assert!(
        ends > chrono::Utc::now() + chrono::Duration::minutes(4),
        "{refreshed}"
    );
    // Acknowledging again is harmless.
    let again = app
        .post_json(
            &format!("/api/v1/alerts/{id}/ack"),
            Some(&admin),
            &Value::Null,
        )
        .await;
    assert_eq!(again.status().as_u16(), 200);
    app.alerts.resolve("root");
    let (resolved, skipped) = r.next_to("/webhook").await;
    assert_eq!(resolved["status"], "resolved", "{skipped:?}");
    assert!(
        skipped
            .iter()
            .all(|(p, b)| p == "/api/v2/alerts" && b[0]["endsAt"].is_string()),
        "only the escalation tier's resolution, no repeat: {skipped:?}"
    );
    // A resolved alert cannot be acknowledged; an unknown one is not found.
    let res = app
        .post_json(
            &format!("/api/v1/alerts/{id}/ack"),
            Some(&admin),
            &Value::Null,
        )
        .await;
    assert_eq!(res.status().as_u16(), 409);
    let res = app
        .post_json("/api/v1/alerts/999999/ack", Some(&admin), &Value::Null)
        .await;
    assert_eq!(res.status().as_u16(), 404);
    app.stop().await;
    r.server.stop(true).await;
}

#[actix_rt::test]
async fn a_failing_channel_is_retried_and_holds_up_no_other() {
    let mut r = Receiver::start().await;
    // Slack fails three times (two retries, then a success on the 4th try).
    r.fail_next("/slack", 3);
    let app = spawn_app_with(|f| routed(f, &r.url)).await;
    app.alerts.raise(alert("api", Severity::Medium));
    // The webhook is not held up by Slack's failures.
    let (path, _) = r.next().await;
    assert_eq!(path, "/webhook");
    let (slack, _) = r.next_to("/slack").await;
    assert!(slack["text"].as_str().unwrap().contains("api_alert"));
    for (result, n) in [("retried", 3), ("ok", 1), ("failed", 0)] {
        let line = format!(
            r#"tgvisor_alert_notifications_total{{channel="slack",result="{result}"}} {n}"#
        );
        assert!(metric(&app, &line).await, "{line}");
    }
    app.stop().await;
    r.server.stop(true).await;
}

#[actix_rt::test]
async fn a_restart_neither_pages_again_nor_forgets_what_fires() {
    let mut r = Receiver::start().await;
    let app = spawn_app_with(|f| routed(f, &r.url)).await;
    app.alerts.raise(alert("disk", Severity::Medium));
    let (first, _) = r.next_to("/webhook").await;
    assert_eq!(first["kind"], "firing");
    // The same configuration, the same database.
    let app = app.restart(|f| f).await;
    // Loaded from the store as firing.
    let (_, listed) = firing_medium(&app).await;
    assert!(listed.contains(&"disk".to_owned()), "{listed:?}");
    // Still firing after the restart: raising it again sends nothing, and
    // the next thing the webhook sees is its resolution.
    app.alerts.raise(alert("disk", Severity::Medium));
    app.alerts.resolve("disk");
    let (next, _) = r.next_to("/webhook").await;
    assert_eq!(next["status"], "resolved");
    assert_eq!(names(&next), ["disk_alert"]);
    let (gauge, listed) = firing_medium(&app).await;
    assert_eq!(gauge as usize, listed.len());
    assert!(!listed.contains(&"disk".to_owned()));
    app.stop().await;
    r.server.stop(true).await;
}

/// A real SMTP server (mailin) on loopback: each message's data arrives on
/// the channel.
#[derive(Clone)]
struct Mailbox {
    tx: std::sync::mpsc::Sender<(Vec<String>, String)>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl mailin_embedded::Handler for Mailbox {
    fn auth_plain(
        &mut self,
        _authorization_id: &str,
        authentication_id: &str,
        password: &str,
    ) -> mailin_embedded::Response {
        if (authentication_id, password) == ("tgvisor", "s3cret pass") {
            mailin_embedded::response::AUTH_OK
        } else {
            mailin_embedded::response::INVALID_CREDENTIALS
        }
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> mailin_embedded::Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let text = String::from_utf8_lossy(&self.data).into_owned();
        let _ = self.tx.send((self.to.clone(), text));
        mailin_embedded::response::OK
    }
}

/// A real SMTP server on loopback (mailin) with `ssl`, AUTH PLAIN when
/// `auth`: its port, and where its messages arrive.
fn smtp_server(
    ssl: mailin_embedded::SslConfig,
    auth: bool,
) -> (u16, std::sync::mpsc::Receiver<(Vec<String>, String)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut smtp = mailin_embedded::Server::new(Mailbox {
        tx,
        to: Vec::new(),
        data: Vec::new(),
    });
    smtp.with_name("localhost")
        .with_ssl(ssl)
        .unwrap()
        .with_tcp_listener(listener);
    if auth {
        // AUTH only after STARTTLS: the server refuses it in the clear.
        smtp.with_auth(mailin_embedded::AuthMechanism::Plain);
    }
    std::thread::spawn(move || {
        let _ = smtp.serve();
    });
    (port, rx)
}

/// Low alerts by e-mail to ops@example.com through the server on `port`,
/// secured as `tls` says.
fn mailing(f: Figment, port: u16, tls: &str) -> Figment {
    f.merge(("alerting.group_wait_ms", 100))
        .merge(("alerting.low.channels", ["email"]))
        .merge(("alerting.channels.email.smtp_host", "127.0.0.1"))
        .merge(("alerting.channels.email.smtp_port", port))
        .merge(("alerting.channels.email.tls", tls))
        .merge(("alerting.channels.email.to", ["ops@example.com"]))
}

/// Raises a low alert `fp` and waits for its e-mail; checks where it went
/// and its subject; answers its text.
async fn mailed(
    app: &TestApp,
    rx: std::sync::mpsc::Receiver<(Vec<String>, String)>,
    fp: &str,
) -> String {
    app.alerts.raise(alert(fp, Severity::Low));
    let (to, text) = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)))
        .await
        .unwrap()
        .expect("an e-mail within 20 s");
    assert_eq!(to, ["ops@example.com"]);
    let subject = format!("Subject: [tgvisor] FIRING low: {fp}_alert");
    assert!(text.contains(&subject), "{text}");
    text
}

/// A CA, and a certificate it signed for 127.0.0.1: (CA, certificate, key)
/// PEM files in `dir`.
fn tls_files(dir: &std::path::Path) -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tgvisor test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    (
        write("ca.pem", ca.pem()),
        write("cert.pem", cert.pem()),
        write("key.pem", key.serialize_pem()),
    )
}

#[actix_rt::test]
async fn e_mail_goes_over_starttls_with_auth_to_a_server_of_a_private_ca() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(dir.path());
    let (port, rx) = smtp_server(
        mailin_embedded::SslConfig::SelfSigned {
            cert_path: cert,
            key_path: key,
        },
        true,
    );
    let app = spawn_app_with(|f| {
        mailing(f, port, "required")
            .merge(("alerting.channels.email.ca_file", ca))
            .merge(("alerting.channels.email.username", "tgvisor"))
            .merge(("alerting.channels.email.password", "s3cret pass"))
    })
    .await;
    mailed(&app, rx, "tls").await;
    app.stop().await;
}

#[actix_rt::test]
async fn e_mail_goes_through_a_real_smtp_server() {
    let (port, rx) = smtp_server(mailin_embedded::SslConfig::None, false);
    let app = spawn_app_with(|f| mailing(f, port, "none")).await;
    let text = mailed(&app, rx, "cert").await;
    // The body is quoted-printable: soft line breaks go.
    let body = text.replace("=\r\n", "");
    assert!(body.contains("cert is on fire"), "{text}");
    app.stop().await;
}

#[actix_rt::test]
async fn with_the_database_down_the_page_goes_out_and_is_written_once_it_answers() {
    let mut r = Receiver::start().await;
    let app = spawn_app_with(|f| routed(f, &r.url)).await;
    let db = app.db_conn().await;
    let sql = |q: &'static str| {
        let db = db.clone();
        async move {
            sea_orm::ConnectionTrait::execute_unprepared(&db, q)
                .await
                .unwrap();
        }
    };
    // The alerts table is gone: every write of the router fails.
    sql("ALTER TABLE alerts RENAME TO alerts_away").await;
    app.alerts.raise(alert("pg", Severity::Medium));
    let (body, _) = r.next_to("/webhook").await;
    assert_eq!(body["status"], "firing");
    assert_eq!(names(&body), ["pg_alert"]);
    // Back: the alert is written (firing), and its resolution is recorded
    // before it is sent.
    sql("ALTER TABLE alerts_away RENAME TO alerts").await;
    app.alerts.resolve("pg");
    let (body, _) = r.next_to("/webhook").await;
    assert_eq!(body["status"], "resolved");
    assert_eq!(names(&body), ["pg_alert"]);
    let resolved = app.alerts.list(Some("resolved"), 10).await.unwrap();
    let row = resolved
        .iter()
        .find(|a| a.fingerprint == "pg")
        .expect("the alert, written once the table was back");
    assert_eq!(row.notifications, 1);
    assert!(row.last_notified_at.is_some());
    app.stop().await;
    r.server.stop(true).await;
}
