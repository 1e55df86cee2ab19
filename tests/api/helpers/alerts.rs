//! An HTTP server on loopback standing in for Slack, the webhook and
//! Alertmanager, and the alerting settings that point at it.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use figment::Figment;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// What the receiver got: (path, JSON body).
type Got = (String, Value);
/// Failures to answer, by path.
type Failures = Arc<Mutex<HashMap<String, u32>>>;

/// An HTTP server on loopback that records every POST and answers 200, or
/// a failure for the next `n` requests to a path.
pub struct Receiver {
    pub url: String,
    rx: mpsc::UnboundedReceiver<Got>,
    failures: Failures,
    pub server: actix_web::dev::ServerHandle,
}

async fn record(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<(mpsc::UnboundedSender<Got>, Failures)>,
) -> HttpResponse {
    let path = req.path().to_owned();
    {
        let mut failures = state.1.lock().unwrap();
        if let Some(n) = failures.get_mut(&path)
            && *n > 0
        {
            *n -= 1;
            return HttpResponse::InternalServerError().finish();
        }
    }
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _ = state.0.send((path, json));
    HttpResponse::Ok().finish()
}

impl Receiver {
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let failures: Failures = Arc::default();
        let state = web::Data::new((tx, failures.clone()));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .default_service(web::to(record))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}"),
            rx,
            failures,
            server: handle,
        }
    }

    pub fn fail_next(&self, path: &str, n: u32) {
        self.failures.lock().unwrap().insert(path.to_owned(), n);
    }

    pub async fn next(&mut self) -> Got {
        tokio::time::timeout(Duration::from_secs(20), self.rx.recv())
            .await
            .expect("a notification within 20 s")
            .expect("the receiver is running")
    }

    /// The next delivery to `path` (others are kept aside and returned).
    pub async fn next_to(&mut self, path: &str) -> (Value, Vec<Got>) {
        let mut others = Vec::new();
        loop {
            let (p, body) = self.next().await;
            if p == path {
                return (body, others);
            }
            others.push((p, body));
        }
    }
}

/// Channels pointed at `r`, fast timing: group wait 300 ms, repeats every
/// second, one retry per tier.
pub fn routed(f: Figment, url: &str) -> Figment {
    f.merge(("alerting.group_wait_ms", 300))
        .merge((
            "alerting.channels.slack.webhook_url",
            format!("{url}/slack"),
        ))
        .merge(("alerting.channels.webhook.url", format!("{url}/webhook")))
        .merge(("alerting.channels.alertmanager.url", url))
        .merge(("alerting.high.channels", ["webhook"]))
        .merge(("alerting.high.retry_interval_ms", 1000))
        .merge(("alerting.high.max_retries", 1))
        .merge(("alerting.medium.channels", ["webhook", "slack"]))
        .merge(("alerting.medium.retry_interval_ms", 600_000))
        .merge(("alerting.escalation_tiers", [["alertmanager"]]))
        .merge(("alerting.delivery_backoff_ms", 50))
        // The health monitor's own alerts stay out of the way, whatever
        // this machine's memory, CPU and disk.
        .merge(("health.sample_interval_ms", 3_600_000))
        .merge(("health.window_ms", 3_600_000))
        .merge((
            "thresholds.resource.memory",
            json!({"warning": 1.0, "critical": 1.0}),
        ))
        .merge((
            "thresholds.resource.cpu",
            json!({"warning": 1.0, "critical": 1.0}),
        ))
        .merge((
            "thresholds.resource.storage",
            json!({"warning": 1.0, "critical": 1.0}),
        ))
}
