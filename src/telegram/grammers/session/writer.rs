//! The write-through: the task that saves the session to its
//! [`SessionSink`] whenever it changes, and [`TgSession::flush`], which
//! waits for such a save.

use super::{FlushError, TgSession, Written};
use crate::telegram::SessionSink;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

impl TgSession {
    /// Saves everything changed so far and waits for the write.
    pub async fn flush(&self, within: Duration) -> Result<(), FlushError> {
        let target = self.generation();
        let last = *self.written.borrow();
        if last.generation >= target && !last.failed {
            return Ok(());
        }
        let mut rx = self.written.subscribe();
        self.request.send_replace(target);
        // A write attempted after this request, covering the target.
        let wait = rx.wait_for(|w| w.attempts > last.attempts && w.generation >= target);
        match tokio::time::timeout(within, wait).await {
            Err(_) => Err(FlushError::TimedOut),
            Ok(Err(_)) => Err(FlushError::WriterGone),
            Ok(Ok(w)) if w.failed => Err(FlushError::WriteFailed),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Starts the writer task. It ends when the session is dropped.
    pub fn spawn_writer(
        self: &Arc<Self>,
        sink: Arc<dyn SessionSink>,
        tick: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let request = self.request.subscribe();
        let armed = self.armed.subscribe();
        tokio::spawn(writer(weak, request, armed, sink, tick))
    }
}

async fn writer(
    session: Weak<TgSession>,
    mut request: watch::Receiver<u64>,
    mut armed: watch::Receiver<bool>,
    sink: Arc<dyn SessionSink>,
    tick: Duration,
) {
    if armed.wait_for(|a| *a).await.is_err() {
        return;
    }
    let mut interval = tokio::time::interval(tick.max(Duration::from_millis(10)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = request.changed() => {
                if changed.is_err() {
                    return; // the session is gone
                }
            }
            _ = interval.tick() => {}
        }
        let Some(session) = session.upgrade() else {
            return;
        };
        let generation = session.generation();
        let last = *session.written.borrow();
        if generation == last.generation && !last.failed {
            continue;
        }
        let data = session.snapshot();
        // Do not hold the session while the store works.
        let written = session.written.clone();
        drop(session);
        let failed = match sink.save(&data).await {
            Ok(()) => false,
            Err(e) => {
                tracing::warn!(error = %e, "saving the Telegram session failed");
                true
            }
        };
        written.send_modify(|w| {
            *w = Written {
                generation,
                failed,
                attempts: w.attempts + 1,
            }
        });
    }
}
