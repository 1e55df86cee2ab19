//! Where the drain reads and records an account's messages: the store
//! trait, a transition's row changes, and the database store that commits
//! each transition with its event.

use crate::domain::MessageStatus;
use crate::entities::outbox;
use crate::events::{SideWrite, TopicWriter, WriterClosed};
use crate::telegram::UploadedFile;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set};
use std::sync::Arc;

/// The fields a transition changes besides the status (`None`: unchanged).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowUpdate {
    pub attempts: Option<i32>,
    pub flood_waits: Option<i32>,
    pub chat_id: Option<i64>,
    pub telegram_message_id: Option<Option<i32>>,
    pub last_error: Option<Option<String>>,
    pub next_attempt_at: Option<Option<DateTime<Utc>>>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl RowUpdate {
    fn active_model(&self, status: MessageStatus) -> outbox::ActiveModel {
        let mut m = outbox::ActiveModel {
            status: Set(status.as_str().to_owned()),
            updated_at: Set(Utc::now().fixed_offset()),
            ..Default::default()
        };
        if let Some(v) = self.attempts {
            m.attempts = Set(v);
        }
        if let Some(v) = self.flood_waits {
            m.flood_waits = Set(v);
        }
        if let Some(v) = self.chat_id {
            m.chat_id = Set(Some(v));
        }
        if let Some(v) = self.telegram_message_id {
            m.telegram_message_id = Set(v);
        }
        if let Some(v) = &self.last_error {
            m.last_error = Set(v.clone());
        }
        if let Some(v) = self.next_attempt_at {
            m.next_attempt_at = Set(v.map(|t| t.fixed_offset()));
        }
        if let Some(v) = self.sent_at {
            m.sent_at = Set(Some(v.fixed_offset()));
        }
        m
    }

    /// Applies the update to a row held in memory (the tests' store).
    #[cfg(test)]
    pub fn apply(&self, status: MessageStatus, row: &mut outbox::Model) {
        row.status = status.as_str().to_owned();
        if let Some(v) = self.attempts {
            row.attempts = v;
        }
        if let Some(v) = self.flood_waits {
            row.flood_waits = v;
        }
        if let Some(v) = self.chat_id {
            row.chat_id = Some(v);
        }
        if let Some(v) = self.telegram_message_id {
            row.telegram_message_id = v;
        }
        if let Some(v) = &self.last_error {
            row.last_error = v.clone();
        }
        if let Some(v) = self.next_attempt_at {
            row.next_attempt_at = v.map(|t| t.fixed_offset());
        }
        if let Some(v) = self.sent_at {
            row.sent_at = Some(v.fixed_offset());
        }
    }
}

/// Where the drain reads and records the account's messages.
#[async_trait]
pub trait DrainStore: Send + Sync {
    /// The head of each chat: its oldest undelivered row (queued or
    /// sending), oldest heads first, at most `limit`.
    async fn heads(&self, account_id: i64, limit: u64) -> Result<Vec<outbox::Model>, DbErr>;
    async fn set_chat_id(&self, id: i64, chat_id: i64) -> Result<(), DbErr>;
    /// A media message's file: its upload, if it is finished.
    async fn uploaded_file(&self, upload_id: i64) -> Result<Option<UploadedFile>, DbErr>;
    /// Writes a row's transition and its `message.status` event together
    /// and waits until both are stored. `Ok(false)`: the row is gone (its
    /// account was removed).
    async fn transition(
        &self,
        id: i64,
        status: MessageStatus,
        update: RowUpdate,
        event: serde_json::Value,
    ) -> Result<bool, WriterClosed>;
}

/// The database, with transitions through the account topic's writer (so
/// the row and its event commit in one transaction, in topic order).
pub struct DbStore {
    pub db: DatabaseConnection,
    pub writer: TopicWriter,
}

#[async_trait]
impl DrainStore for DbStore {
    async fn heads(&self, account_id: i64, limit: u64) -> Result<Vec<outbox::Model>, DbErr> {
        crate::outbox::backlog::heads(&self.db, account_id, limit).await
    }

    async fn set_chat_id(&self, id: i64, chat_id: i64) -> Result<(), DbErr> {
        outbox::Entity::update_many()
            .set(outbox::ActiveModel {
                chat_id: Set(Some(chat_id)),
                ..Default::default()
            })
            .filter(outbox::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn uploaded_file(&self, upload_id: i64) -> Result<Option<UploadedFile>, DbErr> {
        use crate::entities::upload;
        let Some(u) = upload::Entity::find_by_id(upload_id).one(&self.db).await? else {
            return Ok(None);
        };
        if u.status != crate::domain::UploadStatus::Done.as_str() {
            return Ok(None);
        }
        Ok(Some(UploadedFile {
            file_id: u.file_id,
            parts: u32::try_from(u.parts_total.unwrap_or(u.parts_done)).unwrap_or(0),
            name: u.name,
            size: u64::try_from(u.size.unwrap_or(u.bytes)).unwrap_or(0),
            big: u.big,
        }))
    }

    async fn transition(
        &self,
        id: i64,
        status: MessageStatus,
        update: RowUpdate,
        event: serde_json::Value,
    ) -> Result<bool, WriterClosed> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let found = Arc::new(AtomicBool::new(false));
        let seen = found.clone();
        let side: SideWrite = Arc::new(move |txn| {
            let model = update.active_model(status);
            let seen = seen.clone();
            Box::pin(async move {
                // A row that is gone (its account was removed) updates nothing.
                let res = outbox::Entity::update_many()
                    .set(model)
                    .filter(outbox::Column::Id.eq(id))
                    .exec(txn)
                    .await?;
                seen.store(res.rows_affected > 0, Ordering::Relaxed);
                Ok(())
            })
        });
        self.writer
            .commit_with("message.status", event, side)
            .await?;
        Ok(found.load(Ordering::Relaxed))
    }
}
