//! An account's update pump: the connection's updates become events on the
//! account's topic, in order, each change of a message announced once.
//!
//! - Each update's event carries [`Dedupe`] keys: (chat, message, change),
//!   where the change is `new`, `deleted`, or for an edit
//!   `edited:<edit date>:<digest of the edited message>` (an edit is
//!   announced once per version, however often Telegram repeats it). The
//!   event log drops what it announced before.
//! - The update state an update reaches is committed in the same
//!   transaction as the update's event (a checkpoint, see
//!   [`TopicWriter::checkpoint`]), so a restart after a crash at any point
//!   catches up from exactly what was announced.
//! - Updates that announce nothing (read receipts, typing, …) move the state
//!   too. Storing each of those would cost a write per update for nothing
//!   announced; their state is committed at most once per `quiet_interval`
//!   (and when the stream ends), or sooner with the next event. After a crash
//!   at most that much of them is fetched again, and dropped again.

use super::update_state;
use crate::events::{Dedupe, TopicWriter, WriterClosed};
use crate::telegram::metrics::TelegramMetrics;
use crate::telegram::{Incoming, Message, Update, UpdateState};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the log dedupes `update`'s event by; `None` for an update that
/// announces nothing (a deletion of no messages).
pub fn dedupe_keys(update: &Update) -> Option<Dedupe> {
    match update {
        Update::NewMessage(m) => Some(Dedupe::new(m.chat_id, "new", vec![i64::from(m.id)])),
        Update::MessageEdited(m) => Some(Dedupe::new(
            m.chat_id,
            edit_change(m),
            vec![i64::from(m.id)],
        )),
        Update::MessagesDeleted { ids, .. } if ids.is_empty() => None,
        Update::MessagesDeleted { chat_id, ids } => Some(Dedupe::new(
            chat_id.unwrap_or(0),
            "deleted",
            ids.iter().copied().map(i64::from).collect(),
        )),
    }
}

/// One version of an edit: its edit date, and a digest of the message as
/// edited (two edits within one second differ in content).
fn edit_change(m: &Message) -> String {
    // A plain struct of strings and numbers always serializes.
    let json = serde_json::to_vec(m).unwrap_or_default();
    let digest = Sha256::digest(&json);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let edited = m.edit_date.map_or(0, |d| d.timestamp());
    format!("edited:{edited}:{hex}")
}

/// Where the pump commits to.
pub struct Pump {
    pub account_id: i64,
    pub writer: TopicWriter,
    pub metrics: TelegramMetrics,
    /// How often at most a state reached by updates that announce nothing
    /// is committed (`telegram.update_state_sync_interval_ms`).
    pub quiet_interval: Duration,
}

impl Pump {
    /// Runs until the connection's update channel closes (the client was
    /// dropped or disconnected), after queueing what it took.
    pub async fn run(self, mut updates: mpsc::Receiver<Incoming>) {
        let mut quiet: Option<UpdateState> = None;
        let mut last_commit: Option<Instant> = None;
        loop {
            let due = quiet
                .as_ref()
                .and(last_commit)
                .map(|t| t + self.quiet_interval);
            let next = match due {
                Some(at) => tokio::select! {
                    next = updates.recv() => next,
                    () = tokio::time::sleep_until(at) => {
                        if let Some(state) = quiet.take()
                            && self.checkpoint(state).await.is_err()
                        {
                            return;
                        }
                        last_commit = Some(Instant::now());
                        continue;
                    }
                },
                None => updates.recv().await,
            };
            let Some(Incoming { update, state }) = next else {
                break;
            };
            let sent = match (update, state) {
                (Some(update), state) => {
                    if state.is_some() {
                        // It covers whatever quiet state came before.
                        quiet = None;
                        last_commit = Some(Instant::now());
                    }
                    self.publish(update, state).await
                }
                (None, Some(state)) => {
                    if last_commit.is_none_or(|t| t.elapsed() >= self.quiet_interval) {
                        quiet = None;
                        last_commit = Some(Instant::now());
                        self.checkpoint(state).await
                    } else {
                        quiet = Some(state);
                        Ok(())
                    }
                }
                (None, None) => Ok(()),
            };
            if sent.is_err() {
                tracing::warn!(
                    account_id = self.account_id,
                    "update dropped: the event writer stopped"
                );
                return;
            }
        }
        if let Some(state) = quiet {
            let _ = self.checkpoint(state).await;
        }
    }

    async fn publish(
        &self,
        update: Update,
        state: Option<UpdateState>,
    ) -> Result<(), WriterClosed> {
        let kind = update.event_kind();
        self.metrics.updates.with_label_values(&[kind]).inc();
        let checkpoint = state.map(|s| update_state::write(self.account_id, s));
        let Some(keys) = dedupe_keys(&update) else {
            return match checkpoint {
                Some(c) => self.writer.checkpoint(c).await,
                None => Ok(()),
            };
        };
        let mut data = update.payload();
        if let Some(obj) = data.as_object_mut() {
            obj.insert("account_id".into(), self.account_id.into());
        }
        self.writer
            .publish_deduped(kind, data, keys, checkpoint)
            .await
    }

    async fn checkpoint(&self, state: UpdateState) -> Result<(), WriterClosed> {
        self.writer
            .checkpoint(update_state::write(self.account_id, state))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: i32, text: &str, edit: Option<i64>) -> Message {
        Message {
            id,
            chat_id: 7,
            sender_id: Some(7),
            outgoing: false,
            text: text.to_owned(),
            date: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            reply_to: None,
            edit_date: edit.and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
            media: None,
        }
    }

    #[test]
    fn new_messages_and_deletions_are_keyed_by_chat_and_message() {
        assert_eq!(
            dedupe_keys(&Update::NewMessage(message(5, "hi", None))),
            Some(Dedupe::new(7, "new", vec![5]))
        );
        assert_eq!(
            dedupe_keys(&Update::MessagesDeleted {
                chat_id: None,
                ids: vec![3, 4],
            }),
            Some(Dedupe::new(0, "deleted", vec![3, 4]))
        );
        assert_eq!(
            dedupe_keys(&Update::MessagesDeleted {
                chat_id: Some(-1001),
                ids: vec![3],
            }),
            Some(Dedupe::new(-1001, "deleted", vec![3]))
        );
        assert_eq!(
            dedupe_keys(&Update::MessagesDeleted {
                chat_id: None,
                ids: vec![],
            }),
            None
        );
    }

    #[test]
    fn each_version_of_an_edit_has_its_own_key_and_a_repeat_the_same() {
        let key = |m: Message| dedupe_keys(&Update::MessageEdited(m)).unwrap().change;
        let first = key(message(5, "one", Some(1_700_000_100)));
        assert!(first.starts_with("edited:1700000100:"), "{first}");
        assert!(first.len() <= 64, "{first}");
        // The same edit again (a replay): the same key.
        assert_eq!(first, key(message(5, "one", Some(1_700_000_100))));
        // Another edit in the same second, or later: other keys.
        assert_ne!(first, key(message(5, "two", Some(1_700_000_100))));
        assert_ne!(first, key(message(5, "one", Some(1_700_000_101))));
    }
}
