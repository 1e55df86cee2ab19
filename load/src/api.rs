//! The slice of tgvisor's HTTP API this tool uses, over one shared
//! `reqwest::Client` (HTTP/1.1, kept-alive connections, a pool sized to the
//! clients). Failures come back as [`Failure`]: the service's
//! `{"error":{"code","message"}}` or a transport problem, described for people.

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Client, Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::time::Duration;

/// How long to wait for a TCP connection to the service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle on the service: base URL, HTTP client, and the caller's token once logged in.
#[derive(Clone)]
pub struct Api {
    /// Shared by every client task: one connection pool.
    http: Client,
    /// `http://host:port` (any path kept), without a trailing `/`.
    base: String,
    /// `Bearer <token>`, set by [`Api::with_token`].
    auth: Option<HeaderValue>,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The service answered with an unexpected status.
    Status {
        status: u16,
        /// The error body's `code`, or `-` when the body was not tgvisor's error JSON.
        code: String,
        /// The error body's `message`, or the start of the body.
        message: String,
    },
    /// No usable answer: connection refused, timeout, unreadable body.
    Transport {
        /// Short machine kind: `connect`, `timeout`, `body`, `request`.
        kind: &'static str,
        /// What happened, for people.
        detail: String,
    },
}

impl Failure {
    /// The HTTP status, if the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Transport { .. } => None,
        }
    }

    /// The error code, if the service answered with tgvisor's error JSON.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Status { code, .. } => Some(code),
            Self::Transport { .. } => None,
        }
    }

    /// A stable grouping key for reports: `429 rate_limited`, `transport connect`.
    pub fn kind(&self) -> String {
        match self {
            Self::Status { status, code, .. } => format!("{status} {code}"),
            Self::Transport { kind, .. } => format!("transport {kind}"),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status {
                status,
                code,
                message,
            } => write!(f, "HTTP {status} {code}: {message}"),
            Self::Transport { detail, .. } => f.write_str(detail),
        }
    }
}

impl std::error::Error for Failure {}

/// tgvisor's error body.
#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
}

/// Builds a [`Failure::Status`] from a non-expected answer.
pub fn status_failure(status: StatusCode, body: &[u8]) -> Failure {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(e) => Failure::Status {
            status: status.as_u16(),
            code: e.error.code,
            message: e.error.message,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let mut message: String = text.trim().chars().take(200).collect();
            if message.is_empty() {
                message = status.canonical_reason().unwrap_or("no body").to_owned();
            }
            Failure::Status {
                status: status.as_u16(),
                code: "-".to_owned(),
                message,
            }
        }
    }
}

/// Describes a reqwest error in one line, with its root cause.
pub fn transport_failure(base: &str, e: &reqwest::Error) -> Failure {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let (kind, detail) = if e.is_timeout() {
        ("timeout", format!("no answer from {base} in time ({root})"))
    } else if e.is_connect() {
        (
            "connect",
            format!("cannot connect to {base}: {root} (is tgvisor running there?)"),
        )
    } else if e.is_body() || e.is_decode() {
        (
            "body",
            format!("reading an answer from {base} failed: {root}"),
        )
    } else {
        ("request", format!("a request to {base} failed: {root}"))
    };
    Failure::Transport { kind, detail }
}

/// Checks and normalises the base URL: `http://host[:port][/path]`.
pub fn normalise_base(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| format!("--url '{url}' is not a URL ({e}); e.g. http://127.0.0.1:8080"))?;
    match parsed.scheme() {
        "http" => {}
        "https" => {
            return Err(format!(
                "--url '{url}': https is not supported (this tool speaks plain HTTP; benchmark the service directly)"
            ));
        }
        other => return Err(format!("--url '{url}': scheme '{other}' is not http")),
    }
    if parsed.host_str().is_none() {
        return Err(format!("--url '{url}' has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "--url '{url}': give only the base URL, without ? or #"
        ));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

impl Api {
    /// A client for `url` with room for `clients` kept-alive connections.
    pub fn new(url: &str, clients: usize, timeout: Duration) -> anyhow::Result<Self> {
        let base = normalise_base(url).map_err(anyhow::Error::msg)?;
        let http = Client::builder()
            .http1_only()
            .pool_max_idle_per_host(clients)
            .tcp_nodelay(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .no_proxy()
            .user_agent(concat!("tgvisor-load/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))?;
        Ok(Self {
            http,
            base,
            auth: None,
        })
    }

    /// The same client, sending `Authorization: Bearer <token>`.
    pub fn with_token(&self, token: &str) -> anyhow::Result<Self> {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            anyhow::anyhow!("the service returned a token that is not a header value")
        })?;
        value.set_sensitive(true);
        Ok(Self {
            auth: Some(value),
            ..self.clone()
        })
    }

    /// The base URL, for messages.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `base` + `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the caller's token, if any.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, self.url(path));
        match &self.auth {
            Some(auth) => builder.header(AUTHORIZATION, auth.clone()),
            None => builder,
        }
    }

    /// Sends `request`, expects `expected`, and decodes the JSON answer.
    pub async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        expected: StatusCode,
    ) -> Result<T, Failure> {
        let bytes = self.exchange(request, expected).await?;
        serde_json::from_slice(&bytes).map_err(|e| Failure::Transport {
            kind: "body",
            detail: format!("unexpected answer from {}: {e}", self.base),
        })
    }

    /// Sends `request` and expects `expected`; returns the body.
    pub async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        expected: StatusCode,
    ) -> Result<Vec<u8>, Failure> {
        let response = request
            .send()
            .await
            .map_err(|e| transport_failure(&self.base, &e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_failure(&self.base, &e))?;
        if status != expected {
            return Err(status_failure(status, &body));
        }
        Ok(body.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_normalised() {
        assert_eq!(
            normalise_base("http://127.0.0.1:8080/").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        assert_eq!(
            normalise_base("http://localhost:9000/tgvisor/").as_deref(),
            Ok("http://localhost:9000/tgvisor")
        );
        assert!(normalise_base("127.0.0.1:8080").is_err());
        assert!(
            normalise_base("https://example.com")
                .unwrap_err()
                .contains("https")
        );
        assert!(normalise_base("ftp://example.com").is_err());
        assert!(normalise_base("http://x/?a=1").is_err());
        assert!(normalise_base("not a url").is_err());
    }

    #[test]
    fn error_bodies_become_status_code_failures() {
        let body =
            br#"{"error":{"code":"rate_limited","message":"slow down","retry_after_ms":1000}}"#;
        let f = status_failure(StatusCode::TOO_MANY_REQUESTS, body);
        assert_eq!(f.kind(), "429 rate_limited");
        assert_eq!(f.status(), Some(429));
        assert_eq!(f.code(), Some("rate_limited"));
        assert_eq!(f.to_string(), "HTTP 429 rate_limited: slow down");

        let f = status_failure(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!(f.kind(), "502 -");
        assert!(f.to_string().contains("bad gateway"));
        let f = status_failure(StatusCode::NOT_FOUND, b"");
        assert_eq!(f.to_string(), "HTTP 404 -: Not Found");
    }
}
