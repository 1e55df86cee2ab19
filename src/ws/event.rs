//! A committed event as the gateway hands it out: its frame, serialized
//! once, so every subscriber gets the same bytes.

use crate::events::StoredEvent;
use bytestring::ByteString;

/// A committed event as the hub hands it out: its frame, serialized once.
#[derive(Debug)]
pub struct HubEvent {
    pub topic: String,
    pub offset: i64,
    pub frame: ByteString,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl HubEvent {
    pub fn new(e: &StoredEvent) -> Self {
        Self {
            topic: e.topic.clone(),
            offset: e.offset,
            frame: super::frames::event_frame(e).into(),
            created_at: e.created_at.with_timezone(&chrono::Utc),
        }
    }
}
