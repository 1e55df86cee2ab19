//! The update pump of a grammers connection.
//!
//! Updates are read a batch at a time from grammers' `UpdatesReceiver`:
//! one socket message, or one page of `getDifference`. Only the last update
//! of a batch carries a state, the receiver's state after the whole batch:
//! a page of `getDifference` gives every new message the page's final pts,
//! so a state stored with its first message would skip the rest after a
//! crash. A crash inside a batch fetches it again, and the event log's
//! dedupe keys drop what was announced of it.

use super::convert::{self, map_error};
use super::session::TgSession;
use crate::telegram::Incoming;
use grammers_client::InvocationError;
use grammers_mtsender::UpdatesReceiver;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Reads grammers' updates a batch at a time and hands tgvisor's updates
/// on, the last of each batch with the state after the batch (see the
/// module docs). A batch with nothing to hand on still hands its state on
/// when it moved.
pub(super) async fn pump(
    mut receiver: UpdatesReceiver,
    tx: mpsc::Sender<Incoming>,
    session: Arc<TgSession>,
) {
    let mut handed = session.start_state();
    loop {
        let (batch, users, chats) = match receiver.next().await {
            Ok(next) => next,
            Err(InvocationError::Dropped(_)) => return, // the pool is gone
            Err(e) => {
                tracing::warn!(error = %map_error(&e, None), "the Telegram update stream failed");
                return;
            }
        };
        session.remember(convert::users_to_peers(&users).chain(convert::chats_to_peers(&chats)));
        let self_id = session.user_id();
        let updates: Vec<_> = batch
            .iter()
            .filter_map(|(raw, _)| convert::update(raw, self_id))
            .collect();
        // The receiver's state now covers the batch: have grammers hand it
        // to the session (the only way it gives it out).
        if receiver.sync_update_state().await.is_err() {
            tracing::warn!("reading the update state failed");
        }
        let state = session
            .live_update_state()
            .filter(|s| *s != handed || !updates.is_empty());
        if let Some(s) = &state {
            handed = s.clone();
        }
        let last = updates.len().saturating_sub(1);
        let mut items: Vec<Incoming> = updates
            .into_iter()
            .enumerate()
            .map(|(i, update)| Incoming {
                update: Some(update),
                state: if i == last { state.clone() } else { None },
            })
            .collect();
        if items.is_empty()
            && let Some(state) = state
        {
            items.push(Incoming {
                update: None,
                state: Some(state),
            });
        }
        for item in items {
            if tx.send(item).await.is_err() {
                return; // nobody listens any more
            }
        }
    }
}
