//! Where notifications go: the logs, a Slack incoming webhook, e-mail over
//! SMTP, a generic JSON webhook, and Prometheus Alertmanager's v2 API.
//!
//! Each notification is delivered to each channel by a task of its own,
//! tried `alerting.delivery_attempts` times with doubling waits, each try
//! under `alerting.delivery_timeout_ms`: a channel that is down never holds
//! up another, nor the router. Every outcome is counted in
//! `tgvisor_alert_notifications_total{channel, result}`.

use super::AlertView;
use crate::config::{Alerting, SmtpTls};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use prometheus::{IntCounterVec, Opts, Registry};
use secrecy::ExposeSecret;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Why a notification is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Firing,
    /// Sent again: nobody acknowledged it.
    Repeat,
    /// Moved to the next tier: nobody acknowledged it.
    Escalated,
    Resolved,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Repeat => "repeat",
            Self::Escalated => "escalated",
            Self::Resolved => "resolved",
        }
    }
}

/// One notification: alerts that went out together (a burst is one).
#[derive(Clone, Debug)]
pub struct Notification {
    pub kind: Kind,
    pub alerts: Vec<AlertView>,
}

impl Notification {
    /// A one-line subject.
    pub fn subject(&self) -> String {
        let first = self.alerts.first();
        let head = match self.kind {
            Kind::Resolved => "RESOLVED",
            Kind::Escalated => "ESCALATED",
            Kind::Firing | Kind::Repeat => "FIRING",
        };
        match (self.alerts.len(), first) {
            (1, Some(a)) => format!("[tgvisor] {head} {}: {}", a.severity, a.name),
            (n, _) => format!("[tgvisor] {head}: {n} alerts"),
        }
    }

    /// The alerts, one per line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for a in &self.alerts {
            out.push_str(&format!(
                "- [{}] {} (#{}, since {}): {}\n",
                a.severity,
                a.name,
                a.id,
                a.started_at.to_rfc3339(),
                a.summary
            ));
        }
        if matches!(self.kind, Kind::Firing | Kind::Repeat | Kind::Escalated) {
            out.push_str("Acknowledge: POST /api/v1/alerts/{id}/ack\n");
        }
        out
    }
}

/// `tgvisor_alert_notifications_total{channel, result}`.
#[derive(Clone)]
pub struct ChannelMetrics {
    pub notifications: IntCounterVec,
}

/// Results a delivery is counted under.
pub const RESULTS: [&str; 4] = ["ok", "retried", "failed", "unconfigured"];

impl ChannelMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let notifications = IntCounterVec::new(
            Opts::new(
                "tgvisor_alert_notifications_total",
                "Alert notifications by channel and result (ok; retried: a try failed and another follows; failed: every try failed; unconfigured: sent to the logs instead).",
            ),
            &["channel", "result"],
        )?;
        registry.register(Box::new(notifications.clone()))?;
        for channel in crate::config::CHANNELS {
            for result in RESULTS {
                notifications.with_label_values(&[channel, result]);
            }
        }
        Ok(Self { notifications })
    }
}

/// Delivers notifications; cheap to clone.
#[derive(Clone)]
pub struct Channels {
    inner: Arc<Inner>,
}

struct Inner {
    config: Alerting,
    http: reqwest::Client,
    metrics: ChannelMetrics,
}

/// A try that failed, in words safe to log (no URL, no credentials).
#[derive(Debug)]
struct Failed(String);

impl Channels {
    pub fn new(config: Alerting, metrics: ChannelMetrics) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.delivery_timeout_ms)
            .build()
            .unwrap_or_default();
        let channels = Self {
            inner: Arc::new(Inner {
                config,
                http,
                metrics,
            }),
        };
        for name in crate::config::CHANNELS {
            if !channels.configured(name) {
                tracing::info!(
                    channel = name,
                    "alert channel not configured: what is routed to it goes to the logs"
                );
            }
        }
        channels
    }

    /// Whether `channel` has where to deliver.
    pub fn configured(&self, channel: &str) -> bool {
        let c = &self.inner.config.channels;
        match channel {
            "logs" => true,
            "slack" => c.slack.webhook_url.is_some(),
            "email" => c.email.smtp_host.is_some() && !c.email.to.is_empty(),
            "webhook" => c.webhook.url.is_some(),
            "alertmanager" => c.alertmanager.url.is_some(),
            _ => false,
        }
    }

    /// Delivers `n` to `channel` in a task of its own.
    pub fn deliver(&self, channel: &str, n: Arc<Notification>) {
        let this = self.clone();
        let channel = channel.to_owned();
        tokio::spawn(async move { this.deliver_now(&channel, &n).await });
    }

    /// Delivers `n` to `channel` with its retries; answers whether it
    /// arrived.
    pub async fn deliver_now(&self, channel: &str, n: &Notification) -> bool {
        let m = &self.inner.metrics.notifications;
        if !self.configured(channel) {
            m.with_label_values(&[channel, "unconfigured"]).inc();
            log(channel, n, true);
            return true;
        }
        let config = &self.inner.config;
        let timeout = config.delivery_timeout_ms;
        let backoff = crate::supervisor::Backoff {
            base: config.delivery_backoff_ms,
            factor: 2.0,
            cap: Duration::from_secs(3600),
            jitter: 0.0,
        };
        for attempt in 1..=config.delivery_attempts {
            let tried = tokio::time::timeout(timeout, self.try_once(channel, n)).await;
            let error = match tried {
                Ok(Ok(())) => {
                    m.with_label_values(&[channel, "ok"]).inc();
                    return true;
                }
                Ok(Err(Failed(e))) => e,
                Err(_) => format!("no answer within {} ms", timeout.as_millis()),
            };
            if attempt == config.delivery_attempts {
                m.with_label_values(&[channel, "failed"]).inc();
                tracing::error!(channel, attempts = attempt, error = %error, subject = %n.subject(), "alert notification failed");
                return false;
            }
            m.with_label_values(&[channel, "retried"]).inc();
            tracing::warn!(channel, attempt, error = %error, "alert notification failed; trying again");
            tokio::time::sleep(backoff.nominal(attempt - 1)).await;
        }
        false
    }

    async fn try_once(&self, channel: &str, n: &Notification) -> Result<(), Failed> {
        let c = &self.inner.config.channels;
        match channel {
            "logs" => {
                log(channel, n, false);
                Ok(())
            }
            "slack" => {
                let url = c.slack.webhook_url.as_ref().map(|u| u.expose_secret());
                let body = json!({ "text": format!("*{}*\n{}", n.subject(), n.text()) });
                self.post(url.unwrap_or_default(), &body).await
            }
            "webhook" => {
                let url = c.webhook.url.as_ref().map(|u| u.expose_secret());
                let body = json!({
                    "version": "1",
                    "status": if n.kind == Kind::Resolved { "resolved" } else { "firing" },
                    "kind": n.kind.as_str(),
                    "subject": n.subject(),
                    "alerts": n.alerts,
                });
                self.post(url.unwrap_or_default(), &body).await
            }
            "alertmanager" => {
                let base = c
                    .alertmanager
                    .url
                    .as_ref()
                    .map(|u| u.expose_secret())
                    .unwrap_or_default();
                let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
                self.post(&url, &alertmanager_body(n)).await
            }
            "email" => self.email(n).await,
            other => Err(Failed(format!("unknown channel {other}"))),
        }
    }

    async fn post(&self, url: &str, body: &serde_json::Value) -> Result<(), Failed> {
        let res = self
            .inner
            .http
            .post(url)
            .json(body)
            .send()
            .await
            // Without the URL: it may hold the credential.
            .map_err(|e| Failed(e.without_url().to_string()))?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(Failed(format!("answered {}", res.status())))
        }
    }

    async fn email(&self, n: &Notification) -> Result<(), Failed> {
        let e = &self.inner.config.channels.email;
        let host = e.smtp_host.as_deref().unwrap_or_default();
        let bad = |what: &str, err: &dyn std::fmt::Display| Failed(format!("{what}: {err}"));
        let from: Mailbox = e.from.parse().map_err(|err| bad("from", &err))?;
        let mut message = Message::builder().from(from).subject(n.subject());
        for to in &e.to {
            message = message.to(to.parse().map_err(|err| bad("to", &err))?);
        }
        let message = message.body(n.text()).map_err(|err| bad("message", &err))?;
        let ca = match &e.ca_file {
            Some(path) => Some(
                tokio::fs::read(path)
                    .await
                    .map_err(|err| bad("ca_file", &err))?,
            ),
            None => None,
        };
        let tls = || -> Result<TlsParameters, Failed> {
            let mut p = TlsParameters::builder(host.to_owned());
            if let Some(pem) = &ca {
                let cert = Certificate::from_pem(pem).map_err(|err| bad("ca_file", &err))?;
                p = p.add_root_certificate(cert);
            }
            p.build().map_err(|err| bad("tls", &err))
        };
        let mut smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(e.smtp_port)
            .timeout(Some(self.inner.config.delivery_timeout_ms));
        smtp = match e.tls {
            SmtpTls::None => smtp.tls(Tls::None),
            SmtpTls::Opportunistic => smtp.tls(Tls::Opportunistic(tls()?)),
            SmtpTls::Required => smtp.tls(Tls::Required(tls()?)),
            SmtpTls::Wrapper => smtp.tls(Tls::Wrapper(tls()?)),
        };
        if let (Some(user), Some(password)) = (&e.username, &e.password) {
            smtp = smtp.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        smtp.build()
            .send(message)
            .await
            .map(|_| ())
            .map_err(|err| bad("smtp", &err))
    }
}

fn log(channel: &str, n: &Notification, instead: bool) {
    let text = n.text();
    let subject = n.subject();
    if n.kind == Kind::Resolved {
        tracing::info!(channel, instead_of_channel = instead, %subject, alerts = %text, "alert notification");
    } else {
        tracing::warn!(channel, instead_of_channel = instead, %subject, alerts = %text, "alert notification");
    }
}

/// Alertmanager's `postableAlerts`: a firing alert is valid for five
/// minutes (the router posts it again every minute); a resolved one ends
/// now.
fn alertmanager_body(n: &Notification) -> serde_json::Value {
    let now = chrono::Utc::now();
    let alerts: Vec<_> = n
        .alerts
        .iter()
        .map(|a| {
            let mut labels = a.labels.clone();
            labels.insert("alertname".into(), a.name.clone());
            labels.insert("severity".into(), a.severity.clone());
            labels.insert("service".into(), "tgvisor".into());
            labels.insert("fingerprint".into(), a.fingerprint.clone());
            // The router posts what fires again every
            // alerting.channels.alertmanager.refresh_ms (a minute),
            // acknowledged or not: five minutes of validity outlast a few
            // lost posts, and a tgvisor that is gone lets Alertmanager
            // resolve them.
            let ends = if n.kind == Kind::Resolved {
                now
            } else {
                now + chrono::Duration::minutes(5)
            };
            json!({
                "labels": labels,
                "annotations": { "summary": a.summary },
                "startsAt": a.started_at.to_rfc3339(),
                "endsAt": ends.to_rfc3339(),
            })
        })
        .collect();
    serde_json::Value::Array(alerts)
}
