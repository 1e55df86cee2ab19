//! The subscriptions a client keeps across connections, and where each one
//! stands: the dedupe rule and the resume point live here.

use crate::protocol::Event;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

/// Where the application is on one topic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cursor {
    /// The offset of the last event handed to the application: anything at
    /// or below it is a duplicate.
    delivered: Option<i64>,
    /// The topic's latest offset when the current subscription began. A
    /// subscription made from nothing (`since: null`) has delivered nothing
    /// yet, but must resume from here, or events published while the
    /// connection is down would be lost.
    head: Option<i64>,
}

impl Cursor {
    /// The `since` to subscribe with after a reconnection.
    fn resume(&self) -> Option<i64> {
        self.delivered.max(self.head)
    }
}

/// The topics the application subscribed to, shared (read-only) with its
/// handles through [`Topics::shared`].
#[derive(Debug, Default)]
pub(crate) struct Topics {
    cursors: BTreeMap<String, Cursor>,
    /// Every topic's resume point, for [`Client::offsets`](crate::Client::offsets).
    shared: Arc<Mutex<HashMap<String, i64>>>,
}

impl Topics {
    pub(crate) fn shared(&self) -> Arc<Mutex<HashMap<String, i64>>> {
        Arc::clone(&self.shared)
    }

    /// The server confirmed a subscription made with `since`, answering with
    /// the topic's latest `offset`. Returns whether the stream has a gap
    /// (the application must resync).
    pub(crate) fn confirmed(
        &mut self,
        topic: &str,
        since: Option<i64>,
        offset: Option<i64>,
        recovered: bool,
    ) -> bool {
        let cursor = self.cursors.entry(topic.to_owned()).or_default();
        let gap = since.is_some() && !recovered;
        if since.is_some() && !gap {
            // The replay follows: everything after `since`, nothing at or
            // before it.
            cursor.delivered = since;
        }
        cursor.head = offset;
        self.publish(topic);
        gap
    }

    /// Whether `event` is new: on a subscribed topic and past the last
    /// delivered offset. A new event becomes the last delivered.
    pub(crate) fn accept(&mut self, event: &Event) -> bool {
        let Some(cursor) = self.cursors.get_mut(&event.topic) else {
            return false;
        };
        if cursor.delivered.is_some_and(|last| event.offset <= last) {
            return false;
        }
        cursor.delivered = Some(event.offset);
        self.publish(&event.topic);
        true
    }

    /// Forgets where a topic stands (its history is gone): it resumes from
    /// nothing.
    pub(crate) fn reset(&mut self, topic: &str) {
        if let Some(cursor) = self.cursors.get_mut(topic) {
            *cursor = Cursor::default();
            self.publish(topic);
        }
    }

    /// Drops a topic.
    pub(crate) fn remove(&mut self, topic: &str) {
        self.cursors.remove(topic);
        self.publish(topic);
    }

    pub(crate) fn contains(&self, topic: &str) -> bool {
        self.cursors.contains_key(topic)
    }

    /// Every topic with the `since` to restore it with.
    pub(crate) fn resume_points(&self) -> Vec<(String, Option<i64>)> {
        self.cursors
            .iter()
            .map(|(topic, cursor)| (topic.clone(), cursor.resume()))
            .collect()
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.cursors.keys().cloned().collect()
    }

    fn publish(&self, topic: &str) {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        match self.cursors.get(topic).and_then(Cursor::resume) {
            Some(offset) => shared.insert(topic.to_owned(), offset),
            None => shared.remove(topic),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(topic: &str, offset: i64) -> Event {
        Event {
            topic: topic.into(),
            offset,
            kind: "message.new".into(),
            data: serde_json::Value::Null,
        }
    }

    #[test]
    fn events_at_or_below_the_last_delivered_are_dropped() {
        let mut topics = Topics::default();
        topics.confirmed("a", Some(10), Some(20), true);
        let accepted: Vec<i64> = [9, 10, 14, 12, 14, 20]
            .into_iter()
            .filter(|&o| topics.accept(&event("a", o)))
            .collect();
        assert_eq!(accepted, [14, 20]);
        assert_eq!(topics.resume_points(), [("a".to_owned(), Some(20))]);
    }

    #[test]
    fn events_on_unknown_topics_are_dropped() {
        let mut topics = Topics::default();
        assert!(!topics.accept(&event("a", 1)));
    }

    #[test]
    fn a_subscription_from_nothing_resumes_from_the_head_it_was_given() {
        let mut topics = Topics::default();
        assert!(!topics.confirmed("a", None, Some(40), true));
        // The head is a resume point, not a delivery: an event at it still counts.
        assert!(topics.accept(&event("a", 40)));
        topics.reset("a");
        assert!(!topics.confirmed("b", None, Some(5), true));
        assert_eq!(
            topics.resume_points(),
            [("a".to_owned(), None), ("b".to_owned(), Some(5))]
        );
        let shared = topics.shared();
        let shared = shared.lock().unwrap();
        assert_eq!(shared.get("b"), Some(&5));
        assert_eq!(shared.get("a"), None);
    }

    #[test]
    fn an_unrecovered_subscription_reports_a_gap_and_resumes_from_the_head() {
        let mut topics = Topics::default();
        topics.confirmed("a", Some(3), Some(3), true);
        assert!(topics.confirmed("a", Some(3), Some(90), false));
        assert_eq!(topics.resume_points(), [("a".to_owned(), Some(90))]);
    }
}
