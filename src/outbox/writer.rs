//! Group commit: one task inserts accepted messages, as many per
//! transaction as have arrived (up to `outbox.max_batch`).
//!
//! Under light load a batch is a single message and nobody waits for
//! company; under heavy load the batches grow by themselves, one commit
//! (one fsync) per batch instead of one per message. Per batch the writer
//! makes two statements: the accounts involved (ownership and state), and
//! one multi-row INSERT, which commits the whole batch atomically by itself.
//! A key used before stops its row at the unique index (`ON CONFLICT DO
//! NOTHING`); only then, a third statement reads the earlier rows, to answer
//! the retries.
//!
//! The reads are deliberately not in a transaction with the INSERT: SQLite
//! refuses to upgrade a read transaction to a write once another connection
//! has committed (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out),
//! and the drains commit all the time. What a read could miss is caught by
//! the schema instead: an account removed meanwhile fails the INSERT on its
//! foreign key, and the batch is decided again from fresh reads; a key taken
//! meanwhile (another node) is stopped by the unique index like any other.

use super::arrivals::Signals;
use super::error::EnqueueError;
use super::message::{Media, NewMessage};
use super::metrics::OutboxMetrics;
use super::view::Accepted;
use crate::domain::AccountState;
use crate::domain::MessageStatus;
use crate::entities::{account, outbox};
use crate::supervisor::Lease;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect, Set,
    SqlErr,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tokio::sync::{mpsc, oneshot};

pub(super) struct Request {
    pub msg: NewMessage,
    pub hash: String,
    pub reply: oneshot::Sender<Result<Accepted, EnqueueError>>,
}

/// How often a batch is decided again after losing a race (an idempotency
/// key taken by another node, an account removed meanwhile).
const CONFLICT_RETRIES: usize = 3;

pub(super) async fn run(
    db: DatabaseConnection,
    mut rx: Lease<mpsc::Receiver<Request>>,
    max_batch: usize,
    metrics: OutboxMetrics,
    signals: Signals,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let answers = commit(&db, &batch).await;
        // The chats that got messages, by account.
        let mut arrived: BTreeMap<i64, HashSet<String>> = BTreeMap::new();
        let mut inserted = 0u64;
        for (request, answer) in batch.drain(..).zip(answers) {
            if let Ok(a) = &answer {
                if a.replayed {
                    metrics.replayed.inc();
                } else {
                    inserted += 1;
                    arrived
                        .entry(request.msg.account_id)
                        .or_default()
                        .insert(request.msg.chat.to_string());
                }
            }
            let _ = request.reply.send(answer);
        }
        if inserted > 0 {
            metrics.accepted.inc_by(inserted);
            metrics
                .depth
                .add(i64::try_from(inserted).unwrap_or(i64::MAX));
            metrics.batch_rows.observe(inserted as f64);
        }
        for (account_id, chats) in arrived {
            signals
                .get(account_id)
                .note(chats.iter().map(String::as_str));
        }
    }
}

/// Answers for `batch`, in order. When a batch fails for another reason
/// than a race, its requests are tried one by one, so one bad request
/// cannot fail its neighbours; what fails alone was not written.
async fn commit(db: &DatabaseConnection, batch: &[Request]) -> Vec<Result<Accepted, EnqueueError>> {
    match commit_racing(db, batch).await {
        Ok(answers) => answers,
        Err(e) if batch.len() > 1 => {
            tracing::warn!(error = %e, rows = batch.len(), "an outbox batch failed; writing its rows one by one");
            let mut answers = Vec::with_capacity(batch.len());
            for one in batch.chunks(1) {
                answers.extend(match commit_racing(db, one).await {
                    Ok(a) => a,
                    Err(e) => vec![Err(failed(&e))],
                });
            }
            answers
        }
        Err(e) => vec![Err(failed(&e))],
    }
}

fn failed(e: &DbErr) -> EnqueueError {
    tracing::error!(error = %e, "writing to the outbox failed");
    EnqueueError::Internal(DbErr::Custom(e.to_string()))
}

/// [`try_commit`], decided again after a lost race.
async fn commit_racing(
    db: &DatabaseConnection,
    batch: &[Request],
) -> Result<Vec<Result<Accepted, EnqueueError>>, DbErr> {
    let mut attempt = 0;
    loop {
        match try_commit(db, batch).await {
            Err(e)
                if attempt < CONFLICT_RETRIES
                    && matches!(
                        e.sql_err(),
                        Some(
                            SqlErr::UniqueConstraintViolation(_)
                                | SqlErr::ForeignKeyConstraintViolation(_)
                        )
                    ) =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn try_commit(
    db: &DatabaseConnection,
    batch: &[Request],
) -> Result<Vec<Result<Accepted, EnqueueError>>, DbErr> {
    let account_ids: BTreeSet<i64> = batch.iter().map(|r| r.msg.account_id).collect();
    let accounts: HashMap<i64, (i64, String)> = account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .column(account::Column::UserId)
        .column(account::Column::State)
        .filter(account::Column::Id.is_in(account_ids))
        .into_tuple::<(i64, i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(id, owner, state)| (id, (owner, state)))
        .collect();

    let now = chrono::Utc::now().fixed_offset();
    let mut answers: Vec<Option<Result<Accepted, EnqueueError>>> =
        batch.iter().map(|_| None).collect();
    // The first request of a key in this batch, and later ones with the same key.
    let mut first_of_key: HashMap<(i64, &str), usize> = HashMap::new();
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    // Keyed requests to answer from the key's earlier row, if there is one;
    // with the account's state when they cannot be accepted otherwise.
    let mut lookups: Vec<(usize, Option<AccountState>)> = Vec::new();
    let mut rows = Vec::new();
    // Each new row's request, by its random_id (how RETURNING rows are matched).
    let mut row_of: HashMap<i64, usize> = HashMap::new();
    for (i, r) in batch.iter().enumerate() {
        let m = &r.msg;
        let state = match accounts.get(&m.account_id) {
            Some((owner, state)) if *owner == m.user_id => {
                AccountState::parse(state).unwrap_or(AccountState::Failed)
            }
            _ => {
                answers[i] = Some(Err(EnqueueError::NotFound));
                continue;
            }
        };
        if let Some(key) = &m.idempotency_key {
            if let Some(&first) = first_of_key.get(&(m.user_id, key.as_str())) {
                repeats.push((i, first));
                continue;
            }
            first_of_key.insert((m.user_id, key.as_str()), i);
        }
        if !state.accepts_messages() {
            // A retry of an accepted request answers it whatever the
            // account's state now: the original is stored and will go when
            // it can.
            if m.idempotency_key.is_some() {
                lookups.push((i, Some(state)));
            } else {
                answers[i] = Some(Err(EnqueueError::Unavailable(state)));
            }
            continue;
        }
        let random_id = loop {
            let candidate: i64 = rand::random();
            if candidate != 0 && !row_of.contains_key(&candidate) {
                break candidate;
            }
        };
        row_of.insert(random_id, i);
        rows.push(outbox::ActiveModel {
            account_id: Set(m.account_id),
            user_id: Set(m.user_id),
            idempotency_key: Set(m.idempotency_key.as_ref().map(|k| k.as_str().to_owned())),
            request_hash: Set(r.hash.clone()),
            chat: Set(m.chat.to_string()),
            chat_id: Set(None),
            kind: Set(m.media.map_or("text", Media::kind_str).to_owned()),
            text: Set(m.text.clone()),
            upload_id: Set(m.media.map(|x| x.upload_id)),
            reply_to: Set(m.reply_to),
            silent: Set(m.silent),
            random_id: Set(random_id),
            status: Set(MessageStatus::Queued.as_str().to_owned()),
            attempts: Set(0),
            flood_waits: Set(0),
            telegram_message_id: Set(None),
            last_error: Set(None),
            next_attempt_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            sent_at: Set(None),
            ..Default::default()
        });
    }
    if !rows.is_empty() {
        // A key used before is not looked up first: the unique index finds
        // it as the row goes in (a row it stops is simply not returned), so
        // keyed sends cost no extra read. Looking keys up in advance also
        // proved slow on PostgreSQL: with statistics taken while the table
        // was small, its cached plan scanned all of a user's rows per batch.
        let inserted = outbox::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([outbox::Column::UserId, outbox::Column::IdempotencyKey])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_with_returning(db)
            .await?;
        for row in inserted {
            if let Some(&i) = row_of.get(&row.random_id) {
                answers[i] = Some(Ok(Accepted {
                    message_id: row.id,
                    status: MessageStatus::Queued,
                    replayed: false,
                }));
            }
        }
        // A keyed row that did not go in met its key's earlier row.
        for &i in row_of.values() {
            if answers[i].is_none() && batch[i].msg.idempotency_key.is_some() {
                lookups.push((i, None));
            }
        }
    }
    let mut earlier = HashMap::new();
    if !lookups.is_empty() {
        earlier = earlier_rows(db, lookups.iter().map(|(i, _)| &batch[*i])).await?;
        for (i, unavailable) in lookups {
            let m = &batch[i].msg;
            let key = m.idempotency_key.as_ref().map(|k| k.as_str().to_owned());
            answers[i] = Some(
                match (key.and_then(|k| earlier.get(&(m.user_id, k))), unavailable) {
                    (Some(row), _) => {
                        replay(row.id, &row.status, &row.request_hash, &batch[i].hash)
                    }
                    (None, Some(state)) => Err(EnqueueError::Unavailable(state)),
                    // Its key stopped the row going in, yet its row is gone
                    // (pruned or its account removed meanwhile).
                    (None, None) => Err(EnqueueError::Raced),
                },
            );
        }
    }
    for (i, first) in repeats {
        let m = &batch[i].msg;
        let key = m.idempotency_key.as_ref().map(|k| k.as_str().to_owned());
        if let Some(row) = key.and_then(|k| earlier.get(&(m.user_id, k))) {
            // Answered from the key's earlier row, like its first.
            answers[i] = Some(replay(
                row.id,
                &row.status,
                &row.request_hash,
                &batch[i].hash,
            ));
            continue;
        }
        answers[i] = Some(match &answers[first] {
            Some(Ok(a)) if batch[i].hash == batch[first].hash => Ok(Accepted {
                replayed: true,
                ..*a
            }),
            Some(Ok(_)) => Err(EnqueueError::KeyReused),
            // The first was refused: so is its repeat, for the same reason.
            Some(Err(e)) => Err(e.again()),
            None => Err(EnqueueError::NotFound),
        });
    }
    Ok(answers
        .into_iter()
        .map(|a| {
            a.unwrap_or_else(|| {
                Err(EnqueueError::Internal(DbErr::Custom(
                    "an inserted row was not returned".into(),
                )))
            })
        })
        .collect())
}

/// The rows holding these requests' idempotency keys, by (user, key). Each
/// key is its own branch of the condition, so every one is a probe of the
/// (user_id, idempotency_key) index whatever the planner thinks of the
/// table's size.
async fn earlier_rows<'a>(
    db: &DatabaseConnection,
    requests: impl Iterator<Item = &'a Request>,
) -> Result<HashMap<(i64, String), outbox::Model>, DbErr> {
    let pairs: BTreeSet<(i64, &str)> = requests
        .filter_map(|r| {
            r.msg
                .idempotency_key
                .as_ref()
                .map(|k| (r.msg.user_id, k.as_str()))
        })
        .collect();
    let mut any = Condition::any();
    for (user_id, key) in &pairs {
        any = any.add(
            Condition::all()
                .add(outbox::Column::UserId.eq(*user_id))
                .add(outbox::Column::IdempotencyKey.eq(*key)),
        );
    }
    Ok(outbox::Entity::find()
        .filter(any)
        .all(db)
        .await?
        .into_iter()
        .filter_map(|row| {
            let key = row.idempotency_key.clone()?;
            Some(((row.user_id, key), row))
        })
        .collect())
}

/// The answer to a request whose key was used before.
fn replay(
    message_id: i64,
    status: &str,
    stored_hash: &str,
    hash: &str,
) -> Result<Accepted, EnqueueError> {
    if stored_hash != hash {
        return Err(EnqueueError::KeyReused);
    }
    Ok(Accepted {
        message_id,
        status: MessageStatus::parse(status).unwrap_or(MessageStatus::Queued),
        replayed: true,
    })
}
