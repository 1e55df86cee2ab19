//! Where alerts are delivered: Slack, a webhook, Alertmanager, e-mail.

use secrecy::SecretString;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Where alert channels deliver. A channel without its address (no URL,
/// no SMTP host) is not configured: alerts routed to it go to the logs
/// instead, and start-up says so.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertChannels {
    pub slack: SlackChannel,
    pub email: EmailChannel,
    pub webhook: WebhookChannel,
    pub alertmanager: AlertmanagerChannel,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackChannel {
    /// A Slack incoming-webhook URL (a secret: it is the credential).
    pub webhook_url: Option<SecretString>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannel {
    /// Receives a JSON POST per notification (may carry a token).
    pub url: Option<SecretString>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerChannel {
    /// Alertmanager's base URL, e.g. `http://alertmanager:9093`; alerts
    /// are posted to its v2 API (`/api/v2/alerts`). Secret: it may carry
    /// credentials.
    pub url: Option<SecretString>,
    /// What reached Alertmanager and still fires (acknowledged or not) is
    /// posted again this often: Alertmanager resolves an alert nobody
    /// posts again (each post is valid for five minutes).
    #[serde(with = "super::millis")]
    pub refresh_ms: Duration,
}

impl Default for AlertmanagerChannel {
    fn default() -> Self {
        Self {
            url: None,
            refresh_ms: Duration::from_millis(60_000),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text (a relay on loopback).
    None,
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// STARTTLS or fail.
    #[default]
    Required,
    /// TLS from the first byte (port 465).
    Wrapper,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailChannel {
    /// Unset: e-mail is not configured.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    /// Certificates the server may present besides the system's roots
    /// (PEM file), for a private CA.
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from: String,
    pub to: Vec<String>,
}

impl Default for EmailChannel {
    fn default() -> Self {
        Self {
            smtp_host: None,
            smtp_port: 587,
            tls: SmtpTls::Required,
            ca_file: None,
            username: None,
            password: None,
            from: "tgvisor <tgvisor@localhost>".to_owned(),
            to: Vec::new(),
        }
    }
}
