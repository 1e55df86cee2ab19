//! Development-only routes (registered when `debug.fault_injection` is on):
//! list the actor tree, make an actor panic from inside to watch the
//! supervisor restart it, and append synthetic events to a topic (the
//! WebSocket fan-out benchmark's publisher).

use super::AppState;
use super::error::ApiError;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

pub async fn actors(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.supervision.snapshot())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanicRequest {
    /// The actor's path, e.g. `root/database`.
    actor: String,
}

pub async fn panic_actor(
    state: web::Data<AppState>,
    body: web::Json<PanicRequest>,
) -> Result<HttpResponse, ApiError> {
    if state
        .supervision
        .inject_panic(&body.actor, "fault injected through /debug/actors/panic")
    {
        tracing::warn!(actor = %body.actor, "fault injected");
        Ok(HttpResponse::Accepted()
            .json(serde_json::json!({ "actor": body.actor, "injected": true })))
    } else {
        Err(ApiError::not_found("no running actor at that path"))
    }
}

/// Most events one `POST /debug/events` appends.
pub const MAX_BENCH_EVENTS: u32 = 10_000;
/// Most padding bytes per benchmark event.
pub const MAX_BENCH_PAD: usize = 65_536;
/// The kind of the events `POST /debug/events` appends.
pub const BENCH_KIND: &str = "bench.tick";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    /// `account:<id>`.
    topic: String,
    /// How many events, 1..=10000.
    count: u32,
    /// Bytes of padding per event (`"pad"`), 0..=65536.
    #[serde(default)]
    size: usize,
    /// The first event's `seq` (default 0): a publisher calling repeatedly
    /// passes how many it published so far, so `seq` runs on across calls.
    #[serde(default)]
    first_seq: u64,
}

fn invalid(field: &'static str, reason: &'static str, message: &str) -> ApiError {
    let mut e = ApiError::bad_request("invalid_input", message);
    e.field = Some(field);
    e.reason = Some(reason);
    e
}

/// What is wrong with a benchmark request, if anything.
fn problem(req: &EventsRequest) -> Option<ApiError> {
    let id_ok = req
        .topic
        .strip_prefix("account:")
        .and_then(|id| id.parse::<i64>().ok())
        .is_some_and(|id| id > 0 && crate::events::account_topic(id) == req.topic);
    if !id_ok {
        return Some(invalid(
            "topic",
            "invalid_format",
            "topic must be account:<id> with a positive id",
        ));
    }
    if !(1..=MAX_BENCH_EVENTS).contains(&req.count) {
        return Some(invalid(
            "count",
            "out_of_range",
            "count must be between 1 and 10000",
        ));
    }
    if req.size > MAX_BENCH_PAD {
        return Some(invalid(
            "size",
            "out_of_range",
            "size must be between 0 and 65536",
        ));
    }
    None
}

fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// `POST /debug/events`: appends `count` `bench.tick` events to `topic`,
/// one at a time through the topic's writer (each stored before the next),
/// each stamped with the time it was appended.
pub async fn publish_events(
    state: web::Data<AppState>,
    body: web::Json<EventsRequest>,
) -> Result<HttpResponse, ApiError> {
    if let Some(e) = problem(&body) {
        return Err(e);
    }
    let writer = state.events.writer(&body.topic);
    let pad = "x".repeat(body.size);
    let mut last_offset = 0;
    for i in 0..body.count {
        let seq = body.first_seq.saturating_add(u64::from(i));
        let data = serde_json::json!({
            "seq": seq,
            "published_at_us": unix_micros(),
            "pad": pad,
        });
        let stored = writer.append(BENCH_KIND, data).await.map_err(|_| {
            ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the service is shutting down",
            )
        })?;
        last_offset = stored.offset;
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "published": body.count,
        "last_offset": last_offset,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(topic: &str, count: u32, size: usize) -> EventsRequest {
        EventsRequest {
            topic: topic.to_owned(),
            count,
            size,
            first_seq: 0,
        }
    }

    fn reason(r: &EventsRequest) -> Option<(&'static str, &'static str)> {
        problem(r).map(|e| (e.field.unwrap_or(""), e.reason.unwrap_or("")))
    }

    #[test]
    fn validation() {
        assert_eq!(reason(&req("account:1", 1, 0)), None);
        assert_eq!(reason(&req("account:7", 10_000, 65_536)), None);
        for bad in [
            "account:",
            "account:0",
            "account:-1",
            "account:01",
            "user:1",
            "account:1x",
        ] {
            assert_eq!(
                reason(&req(bad, 1, 0)),
                Some(("topic", "invalid_format")),
                "{bad}"
            );
        }
        assert_eq!(
            reason(&req("account:1", 0, 0)),
            Some(("count", "out_of_range"))
        );
        assert_eq!(
            reason(&req("account:1", 10_001, 0)),
            Some(("count", "out_of_range"))
        );
        assert_eq!(
            reason(&req("account:1", 1, 65_537)),
            Some(("size", "out_of_range"))
        );
    }
}
