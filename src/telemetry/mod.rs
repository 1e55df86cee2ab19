//! Logging: one subscriber, built once, that writes readable lines in
//! development and JSON lines in production, and redacts secrets on the way
//! out (see [`redact`]). Span fields (such as `request_id`) are carried onto
//! every event inside the span.

pub mod redact;

use crate::config::{LogFormat, TelemetrySettings};
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Install the process-wide subscriber. A second call does nothing (tests).
pub fn init(settings: &TelemetrySettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(LogLayer::new(std::io::stdout, settings.format))
        .try_init();
}

/// A `tracing` layer that formats and redacts every event.
pub struct LogLayer<W> {
    make_writer: W,
    format: LogFormat,
}

impl<W> LogLayer<W> {
    pub fn new(make_writer: W, format: LogFormat) -> Self {
        Self {
            make_writer,
            format,
        }
    }
}

/// The redacted fields of a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

#[derive(Default)]
struct Collector {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl Collector {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name == "message" {
            if let Value::String(s) = value {
                self.message = Some(s);
            }
            return;
        }
        let value = if redact::is_sensitive(name) {
            Value::String(redact::REDACTED.to_owned())
        } else {
            value
        };
        self.fields.insert(name.to_owned(), value);
    }

    fn put_str(&mut self, field: &Field, value: &str) {
        let scrubbed = redact::scrub(value).into_owned();
        self.put(field, Value::String(scrubbed));
    }
}

impl Visit for Collector {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put_str(field, value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put_str(field, &format!("{value:?}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put_str(field, &value.to_string());
    }
}

impl<S, W> Layer<S> for LogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut collector = Collector::default();
        attrs.record(&mut collector);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(collector.fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut collector = Collector::default();
        values.record(&mut collector);
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            match ext.get_mut::<SpanFields>() {
                Some(fields) => fields.0.extend(collector.fields),
                None => ext.insert(SpanFields(collector.fields)),
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut collector = Collector::default();
        event.record(&mut collector);
        let mut fields = Map::new();
        let mut span_names = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                span_names.push(span.name());
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    fields.extend(f.0.clone());
                }
            }
        }
        fields.extend(collector.fields);
        let meta = event.metadata();
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let message = collector.message.unwrap_or_default();
        let line = match self.format {
            LogFormat::Json => {
                let mut obj = Map::new();
                obj.insert("timestamp".into(), Value::String(timestamp));
                obj.insert("level".into(), Value::String(meta.level().to_string()));
                obj.insert("target".into(), Value::String(meta.target().to_owned()));
                obj.insert("message".into(), Value::String(message));
                if let Some(span) = span_names.last() {
                    obj.insert("span".into(), Value::String((*span).to_owned()));
                }
                for (k, v) in fields {
                    obj.entry(k).or_insert(v);
                }
                let mut s = Value::Object(obj).to_string();
                s.push('\n');
                s
            }
            LogFormat::Pretty => {
                let mut s = format!(
                    "{timestamp} {:>5} {}: {message}",
                    meta.level(),
                    meta.target()
                );
                for (k, v) in fields {
                    match v {
                        Value::String(v) => {
                            let _ = write!(s, " {k}={v}");
                        }
                        v => {
                            let _ = write!(s, " {k}={v}");
                        }
                    }
                }
                s.push('\n');
                s
            }
        };
        let mut writer = self.make_writer.make_writer_for(meta);
        let _ = writer.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests;
