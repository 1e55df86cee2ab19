use super::*;
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn capture(format: LogFormat, f: impl FnOnce()) -> String {
    let out = Capture::default();
    let subscriber = tracing_subscriber::registry().with(LogLayer::new(out.clone(), format));
    tracing::subscriber::with_default(subscriber, f);
    let bytes = out.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLXNlY3JldA";

fn log_secrets() {
    let span = tracing::info_span!(
        "http",
        request_id = "req-1",
        authorization = "Bearer topsecret"
    );
    let _g = span.enter();
    tracing::info!(
        password = "hunter2",
        token = JWT,
        phone = "+9996621234",
        api_hash = "0123456789abcdef",
        session = ?vec![1u8, 2, 3],
        user_id = 42,
        "login for +9996621234 with {JWT}"
    );
}

#[test]
fn json_lines_carry_span_fields_and_no_secrets() {
    let out = capture(LogFormat::Json, log_secrets);
    for secret in [
        "hunter2",
        JWT,
        "9996621234",
        "0123456789abcdef",
        "topsecret",
        "[1, 2, 3]",
    ] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }
    let line: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["request_id"], "req-1");
    assert_eq!(line["user_id"], 42);
    assert_eq!(line["password"], redact::REDACTED);
    assert_eq!(line["span"], "http");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .starts_with("login for +[REDACTED]")
    );
}

#[test]
fn pretty_lines_are_redacted_too() {
    let out = capture(LogFormat::Pretty, log_secrets);
    for secret in [
        "hunter2",
        JWT,
        "9996621234",
        "0123456789abcdef",
        "topsecret",
    ] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }
    assert!(out.contains("request_id=req-1"), "{out}");
    assert!(out.contains("password=[REDACTED]"), "{out}");
    assert!(out.contains(" INFO "), "{out}");
}
