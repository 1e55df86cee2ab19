//! One subscription of one connection, as its actor and its thread's
//! fan-out shard share it: what was last sent on the topic, whether live
//! events go straight out or are held back behind a log read, and the
//! [`Control`] messages the gateway sends a connection's actor.
//!
//! Subscriptions are gap-free across reconnects. Subscribing registers
//! with the shard *first*, then reads the log; live events that arrive
//! meanwhile are held back, and released after the replay, minus what the
//! replay already sent (offsets increase per topic, so "offset > last
//! sent" is the whole rule). Nothing published while the replay ran is
//! lost, and nothing is sent twice.

use super::event::HubEvent;
use super::outlet::{Out, Outlet, PushError, Pushed};
use crate::metrics::ws::FrameKind;
use actix::prelude::*;
use std::sync::Arc;

/// From the hub to every client.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum Control {
    /// The shard switched subscriptions to reading the log (it may have
    /// missed events): start reading.
    CatchUp,
    /// The send queue overflowed while the shard delivered.
    SlowConsumer,
    /// The service is stopping: close with 1001.
    Shutdown,
    /// The topic's account was removed: its subscription ends.
    TopicGone(String),
}

/// One subscription of one connection: shared by the connection's actor
/// and its thread's fan-out [`Shard`](super::shard::Shard), which writes
/// live events straight into the connection's send queue (both run on
/// the connection's thread, so the lock is never contended).
pub struct Subscription {
    state: std::sync::Mutex<SubState>,
    out: Arc<Outlet>,
    /// The connection's actor.
    addr: Recipient<Control>,
    /// Held events beyond this many are dropped and read from the log
    /// instead (a busy topic during a long replay).
    held_cap: usize,
}

struct SubState {
    /// The last offset written (or queued) to the client for this topic.
    last: i64,
    mode: Mode,
    /// The send queue overflowed; the actor was told.
    slow: bool,
}

enum Mode {
    /// Live events go straight to the send queue.
    Live,
    /// The log is being read (or is about to be): live events are held
    /// back meanwhile.
    Reading {
        held: Vec<Arc<HubEvent>>,
        /// Events may have been missed (or the held ones overflowed) while
        /// the log was read: read it once more before going live.
        again: bool,
    },
}

impl Subscription {
    pub(super) fn new(
        out: Arc<Outlet>,
        addr: Recipient<Control>,
        last: i64,
        held_cap: usize,
    ) -> Self {
        Self {
            state: std::sync::Mutex::new(SubState {
                last,
                mode: Mode::Reading {
                    held: Vec::new(),
                    again: false,
                },
                slow: false,
            }),
            out,
            addr,
            held_cap,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SubState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn addr(&self) -> &Recipient<Control> {
        &self.addr
    }

    /// A committed event of this subscription's topic (from the shard).
    pub(super) fn deliver(&self, event: &Arc<HubEvent>) -> Delivered {
        let mut st = self.state();
        let st = &mut *st;
        match &mut st.mode {
            Mode::Reading { held, again } => {
                if *again {
                    // The log is read again anyway.
                } else if held.len() >= self.held_cap {
                    held.clear();
                    *again = true;
                } else {
                    held.push(event.clone());
                }
                Delivered::Sent
            }
            Mode::Live => {
                if event.offset <= st.last || st.slow {
                    return Delivered::Sent;
                }
                st.last = event.offset;
                let out = Out::Text(
                    event.frame.clone(),
                    Some(event.created_at),
                    FrameKind::Event,
                );
                match self.out.push(out) {
                    Ok(Pushed::Sent) => Delivered::Sent,
                    Ok(Pushed::Queued) => Delivered::Queued,
                    Err(PushError::Full) => {
                        st.slow = true;
                        self.addr.do_send(Control::SlowConsumer);
                        Delivered::Queued
                    }
                    // The connection is over (its actor unsubscribes, or
                    // died without doing so).
                    Err(PushError::Closed) => Delivered::Gone,
                }
            }
        }
    }

    /// Test view: `None` when live, else the offsets held back and whether
    /// the log is to be read again.
    #[cfg(test)]
    pub(super) fn reading(&self) -> Option<(Vec<i64>, bool)> {
        match &self.state().mode {
            Mode::Live => None,
            Mode::Reading { held, again } => {
                Some((held.iter().map(|e| e.offset).collect(), *again))
            }
        }
    }

    /// Test setup: live from `last` on, as after a finished replay.
    #[cfg(test)]
    pub(super) fn go_live(&self) {
        self.state().mode = Mode::Live;
    }

    /// The shard may have missed events: a live subscription switches to
    /// reading the log (answers true: its actor must start reading); one
    /// reading already reads once more.
    pub(super) fn read_log(&self) -> bool {
        let mut st = self.state();
        match &mut st.mode {
            Mode::Live => {
                st.mode = Mode::Reading {
                    held: Vec::new(),
                    again: false,
                };
                true
            }
            Mode::Reading { again, .. } => {
                *again = true;
                false
            }
        }
    }

    /// A log task (a read, or the release of held events) wrote up to
    /// `last`: what the subscription does next. Live events stop being
    /// held back once the log has been read and what was held meanwhile
    /// has been written.
    pub(super) fn read_done(&self, last: i64) -> Next {
        let mut st = self.state();
        st.last = st.last.max(last);
        let from = st.last;
        match &mut st.mode {
            // Held events stay held; the log has them too.
            Mode::Reading { again, .. } if *again => {
                *again = false;
                Next::Pages(from)
            }
            Mode::Reading { held, .. } => {
                let mut pending = Vec::new();
                let mut upto = from;
                for e in std::mem::take(held) {
                    if e.offset > upto {
                        upto = e.offset;
                        pending.push(e);
                    }
                }
                if pending.is_empty() {
                    st.mode = Mode::Live;
                    Next::Live
                } else {
                    // Written at the client's pace, still holding newer
                    // events; then look again.
                    Next::Release(pending)
                }
            }
            Mode::Live => Next::Live,
        }
    }

    /// Its actor starts reading the log for it (the shard asked, see
    /// [`Self::read_log`]): live events are held back from now on, and
    /// the read starts after every lag that asked for it. Answers the
    /// offset to read from.
    pub(super) fn start_reading(&self) -> i64 {
        let mut st = self.state();
        match &mut st.mode {
            Mode::Live => {
                st.mode = Mode::Reading {
                    held: Vec::new(),
                    again: false,
                };
            }
            // The read starts after every lag that asked for it.
            Mode::Reading { again, .. } => *again = false,
        }
        st.last
    }
}

/// What became of a delivery.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Delivered {
    /// Written, held back, or not needed.
    Sent,
    /// Queued behind a full session: the connection's thread must let its
    /// HTTP dispatcher write before more comes.
    Queued,
    /// The connection is closed.
    Gone,
}

/// What a subscription does after a log task.
pub(super) enum Next {
    /// Live events go straight out.
    Live,
    /// Read the log (again) after this offset.
    Pages(i64),
    /// Write these held events, then look again.
    Release(Vec<Arc<HubEvent>>),
}
