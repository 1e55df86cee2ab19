//! Telegram metric families, and [`Instrumented`], a [`Client`] decorator
//! that counts every call by method and result and times it, whatever the
//! backend.

use super::{Client, FloodScope, Me, MediaKind, Message, Peer, SendOptions, TgError, UploadedFile};
use crate::domain::RotationReason;
use crate::domain::validation::ChatRef;
use async_trait::async_trait;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Latency buckets for Telegram calls, in seconds (5 ms .. 60 s).
const CALL_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
];

/// Every method [`Instrumented`] records (its `method` label).
const METHODS: [&str; 8] = [
    "users.getUsers",
    "contacts.resolve",
    "messages.sendMessage",
    "messages.getHistory",
    "upload.saveFilePart",
    "upload.saveBigFilePart",
    "messages.sendMedia",
    "ping",
];

/// Every Telegram metric family.
#[derive(Clone)]
pub struct TelegramMetrics {
    /// Calls by method and result (`ok` or the error code).
    pub requests: IntCounterVec,
    /// Call latency by method.
    pub duration: HistogramVec,
    /// FLOOD_WAITs received, by method and scope.
    pub flood_waits: IntCounterVec,
    /// Seconds Telegram asked to wait, by method.
    pub flood_wait_seconds: IntCounterVec,
    /// Ping round trip by DC (each account's periodic health-check ping to
    /// its home DC).
    pub dc_latency: HistogramVec,
    /// DC migrations (the home DC changed).
    pub migrations: IntCounter,
    /// Updates received, by kind.
    pub updates: IntCounterVec,
    /// Accounts by state.
    pub accounts: IntGaugeVec,
    /// Session rotations by reason (age, errors, manual).
    pub rotations: IntCounterVec,
}

impl TelegramMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "tgvisor_telegram_requests_total",
                "Telegram calls by method and result (ok or the error code).",
            ),
            &["method", "result"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "tgvisor_telegram_request_duration_seconds",
                "Telegram call latency by method.",
            )
            .buckets(CALL_BUCKETS.to_vec()),
            &["method"],
        )?;
        let flood_waits = IntCounterVec::new(
            Opts::new(
                "tgvisor_telegram_flood_waits_total",
                "FLOOD_WAIT answers from Telegram, by method and scope (account or chat).",
            ),
            &["method", "scope"],
        )?;
        let flood_wait_seconds = IntCounterVec::new(
            Opts::new(
                "tgvisor_telegram_flood_wait_seconds_total",
                "Seconds Telegram asked tgvisor to wait, by method.",
            ),
            &["method"],
        )?;
        let dc_latency = HistogramVec::new(
            HistogramOpts::new(
                "tgvisor_telegram_dc_latency_seconds",
                "Ping round trip to the account's home DC, by DC.",
            )
            .buckets(CALL_BUCKETS.to_vec()),
            &["dc"],
        )?;
        let migrations = IntCounter::new(
            "tgvisor_telegram_migrations_total",
            "Times an account's home DC changed.",
        )?;
        let updates = IntCounterVec::new(
            Opts::new(
                "tgvisor_telegram_updates_received_total",
                "Updates received from Telegram, by event kind.",
            ),
            &["kind"],
        )?;
        let accounts = IntGaugeVec::new(
            Opts::new(
                "tgvisor_telegram_accounts",
                "Accounts on this node by state.",
            ),
            &["state"],
        )?;
        let rotations = IntCounterVec::new(
            Opts::new(
                "tgvisor_telegram_session_rotations_total",
                "Session rotations by reason (age, errors, manual).",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(flood_waits.clone()))?;
        registry.register(Box::new(flood_wait_seconds.clone()))?;
        registry.register(Box::new(dc_latency.clone()))?;
        registry.register(Box::new(migrations.clone()))?;
        registry.register(Box::new(updates.clone()))?;
        registry.register(Box::new(accounts.clone()))?;
        registry.register(Box::new(rotations.clone()))?;
        // The bounded label sets start at zero: a flood wait's first
        // occurrence then counts in increase(), and dashboards and alerts
        // see the series before the first event.
        for method in METHODS {
            for scope in ["account", "chat"] {
                flood_waits.with_label_values(&[method, scope]);
            }
            flood_wait_seconds.with_label_values(&[method]);
        }
        for reason in [
            RotationReason::Age,
            RotationReason::Errors,
            RotationReason::Manual,
        ] {
            rotations.with_label_values(&[reason.as_str()]);
        }
        Ok(Self {
            requests,
            duration,
            flood_waits,
            flood_wait_seconds,
            dc_latency,
            migrations,
            updates,
            accounts,
            rotations,
        })
    }

    /// Records one finished call.
    pub fn observe<T>(&self, method: &str, elapsed: Duration, result: &Result<T, TgError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        self.requests.with_label_values(&[method, outcome]).inc();
        self.duration
            .with_label_values(&[method])
            .observe(elapsed.as_secs_f64());
        if let Err(TgError::FloodWait { seconds, scope }) = result {
            let scope = match scope {
                FloodScope::Account => "account",
                FloodScope::Chat { .. } => "chat",
            };
            self.flood_waits.with_label_values(&[method, scope]).inc();
            self.flood_wait_seconds
                .with_label_values(&[method])
                .inc_by(u64::from(*seconds));
        }
    }
}

/// A [`Client`] that records every call in [`TelegramMetrics`].
pub struct Instrumented {
    inner: Arc<dyn Client>,
    metrics: TelegramMetrics,
}

impl Instrumented {
    pub fn wrap(inner: Arc<dyn Client>, metrics: TelegramMetrics) -> Arc<dyn Client> {
        Arc::new(Self { inner, metrics })
    }

    async fn timed<T>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, TgError>>,
    ) -> Result<T, TgError> {
        let started = Instant::now();
        let result = call.await;
        self.metrics.observe(method, started.elapsed(), &result);
        result
    }
}

#[async_trait]
impl Client for Instrumented {
    async fn get_me(&self) -> Result<Me, TgError> {
        self.timed("users.getUsers", self.inner.get_me()).await
    }

    async fn resolve(&self, chat: &ChatRef) -> Result<Peer, TgError> {
        self.timed("contacts.resolve", self.inner.resolve(chat))
            .await
    }

    async fn send_text(
        &self,
        chat: &Peer,
        text: &str,
        opts: &SendOptions,
    ) -> Result<Message, TgError> {
        self.timed(
            "messages.sendMessage",
            self.inner.send_text(chat, text, opts),
        )
        .await
    }

    async fn history(
        &self,
        chat: &Peer,
        limit: u32,
        before: Option<i32>,
    ) -> Result<Vec<Message>, TgError> {
        self.timed(
            "messages.getHistory",
            self.inner.history(chat, limit, before),
        )
        .await
    }

    async fn save_file_part(
        &self,
        file_id: i64,
        part: u32,
        total_parts: Option<u32>,
        bytes: &[u8],
    ) -> Result<(), TgError> {
        let method = super::part_method(total_parts);
        self.timed(
            method,
            self.inner.save_file_part(file_id, part, total_parts, bytes),
        )
        .await
    }

    async fn send_media(
        &self,
        chat: &Peer,
        file: &UploadedFile,
        kind: MediaKind,
        caption: &str,
        opts: &SendOptions,
    ) -> Result<Message, TgError> {
        self.timed(
            "messages.sendMedia",
            self.inner.send_media(chat, file, kind, caption, opts),
        )
        .await
    }

    async fn ping(&self) -> Result<Duration, TgError> {
        self.timed("ping", self.inner.ping()).await
    }

    async fn sync_state(&self) -> Result<(), TgError> {
        self.inner.sync_state().await
    }

    async fn disconnect(&self) {
        self.inner.disconnect().await
    }
}
