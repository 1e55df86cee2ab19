//! A connection's outbound frames: one ordered, bounded queue in front of
//! actix-ws's session.
//!
//! - While nothing waits in the queue, a frame goes straight into the
//!   session (actix-ws's own channel to the connection's response body):
//!   a live event costs no task of ours and no wake-up but the one of the
//!   connection's HTTP dispatcher, which writes it to the socket.
//! - When the session's channel is full, frames wait here, in order, and
//!   the connection's writer task feeds them in as the channel drains.
//!   Once the queue holds `websocket.send_queue` frames the client reads
//!   too slowly: [`Outlet::push`] answers [`PushError::Full`] and the
//!   connection is closed with 4010 instead of growing memory.
//! - A log replay waits for room ([`Outlet::put`]) and always leaves some:
//!   it goes at the client's pace and never takes the room that pings,
//!   replies and live events of other topics need.
//!
//! Every producer (the connection's actor, its replay tasks, its thread's
//! fan-out shard) runs on the connection's thread, so the lock is never
//! contended; it is there because the shard is reachable from the hub.

use crate::metrics::ws::{FrameKind, WsMetrics};
use actix_web::web::Bytes;
use actix_ws::{CloseReason, Message, Session};
use bytestring::ByteString;
use futures_util::Sink;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

/// A frame for the client.
pub(super) enum Out {
    /// A text frame; `created` is an event's commit time (live events only,
    /// for the delivery-latency histogram); `kind` labels the counter.
    Text(ByteString, Option<chrono::DateTime<chrono::Utc>>, FrameKind),
    Ping,
    Pong(Bytes),
    /// The last frame: nothing is sent after it.
    Close(Option<CloseReason>),
}

/// Where a frame went.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Pushed {
    /// Into the session.
    Sent,
    /// Into the queue: the session is full, the writer feeds it in later.
    Queued,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum PushError {
    /// `websocket.send_queue` frames wait already: a slow consumer.
    Full,
    /// The connection is closed or closing.
    Closed,
}

pub(super) struct Outlet {
    inner: Mutex<Inner>,
    /// The queue got shorter (for replays waiting for room).
    space: Notify,
    /// Frames that may wait here.
    cap: usize,
    metrics: WsMetrics,
}

struct Inner {
    session: Session,
    queue: VecDeque<Out>,
    /// The writer task, waiting for frames to queue.
    writer: Option<Waker>,
    /// A close frame was queued or sent, or the session is gone: nothing
    /// more is accepted.
    closed: bool,
    /// The session took the close frame, or is gone, or the outlet was
    /// aborted: the writer is done.
    done: bool,
}

/// RFC 6455: a close frame's reason is at most 123 bytes.
const MAX_CLOSE_REASON: usize = 123;

impl Outlet {
    pub(super) fn new(session: Session, cap: usize, metrics: WsMetrics) -> Self {
        Self {
            inner: Mutex::new(Inner {
                session,
                queue: VecDeque::new(),
                writer: None,
                closed: false,
                done: false,
            }),
            space: Notify::new(),
            cap: cap.max(1),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame (or hands it to the session at once when nothing
    /// waits).
    pub(super) fn push(&self, out: Out) -> Result<Pushed, PushError> {
        let mut inner = self.lock();
        if inner.closed {
            return Err(PushError::Closed);
        }
        if inner.queue.len() >= self.cap {
            return Err(PushError::Full);
        }
        Ok(self.enqueue(&mut inner, out))
    }

    /// Queues a frame once `headroom` more would still fit after it.
    pub(super) async fn put(&self, out: Out, headroom: usize) -> Result<(), PushError> {
        let limit = self.cap.saturating_sub(headroom).max(1);
        let mut out = Some(out);
        loop {
            let space = self.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            {
                let mut inner = self.lock();
                if inner.closed {
                    return Err(PushError::Closed);
                }
                if inner.queue.len() < limit {
                    if let Some(out) = out.take() {
                        let _ = self.enqueue(&mut inner, out);
                    }
                    return Ok(());
                }
            }
            space.await;
        }
    }

    fn enqueue(&self, inner: &mut Inner, out: Out) -> Pushed {
        if matches!(out, Out::Close(_)) {
            inner.closed = true;
        }
        let pushed = if inner.queue.is_empty() {
            // Straight into the session when it has room; a waker that does
            // nothing is fine: the writer polls again with its own.
            let mut cx = Context::from_waker(Waker::noop());
            match self.send(inner, &mut cx, out) {
                // The writer has nothing to do, unless to end.
                Sent::Yes | Sent::Gone if !inner.done => return Pushed::Sent,
                Sent::Yes | Sent::Gone => Pushed::Sent,
                Sent::NotYet(out) => {
                    inner.queue.push_back(out);
                    Pushed::Queued
                }
            }
        } else {
            inner.queue.push_back(out);
            Pushed::Queued
        };
        if let Some(w) = inner.writer.take() {
            w.wake();
        }
        pushed
    }

    /// Hands `out` to the session if it has room.
    fn send(&self, inner: &mut Inner, cx: &mut Context<'_>, out: Out) -> Sent {
        match Pin::new(&mut inner.session).poll_ready(cx) {
            Poll::Pending => return Sent::NotYet(out),
            Poll::Ready(Err(_)) => {
                inner.closed = true;
                inner.done = true;
                inner.queue.clear();
                return Sent::Gone;
            }
            Poll::Ready(Ok(())) => {}
        }
        let (message, text) = match out {
            Out::Text(text, created, kind) => (Message::Text(text), Some((created, kind))),
            Out::Ping => (Message::Ping(Bytes::new()), None),
            Out::Pong(bytes) => (Message::Pong(bytes), None),
            Out::Close(reason) => {
                inner.done = true;
                (Message::Close(reason.map(truncate_reason)), None)
            }
        };
        if Pin::new(&mut inner.session).start_send(message).is_err() {
            inner.closed = true;
            inner.done = true;
            inner.queue.clear();
            return Sent::Gone;
        }
        if let Some((created, kind)) = text {
            self.metrics.out(kind).inc();
            if let Some(at) = created {
                let age = chrono::Utc::now() - at;
                self.metrics
                    .delivery
                    .observe(age.to_std().unwrap_or_default().as_secs_f64());
            }
        }
        Sent::Yes
    }

    /// The writer task's work: feeds waiting frames to the session as it
    /// takes them; ready once the close frame went (or the session is gone).
    pub(super) fn poll_write(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        let mut freed = false;
        let result = loop {
            if inner.done {
                break Poll::Ready(());
            }
            let Some(out) = inner.queue.pop_front() else {
                if inner
                    .writer
                    .as_ref()
                    .is_none_or(|w| !w.will_wake(cx.waker()))
                {
                    inner.writer = Some(cx.waker().clone());
                }
                break Poll::Pending;
            };
            match self.send(&mut inner, cx, out) {
                Sent::Yes => freed = true,
                Sent::Gone => {
                    // A replay waiting for room learns it is over.
                    freed = true;
                    break Poll::Ready(());
                }
                Sent::NotYet(out) => {
                    inner.queue.push_front(out);
                    break Poll::Pending;
                }
            }
        };
        if inner.queue.is_empty() && inner.queue.capacity() > 64 {
            // A burst is over: give its memory back.
            inner.queue.shrink_to(16);
        }
        drop(inner);
        if freed {
            self.space.notify_waiters();
        }
        result
    }

    /// Drops what waits, refuses anything more, and answers the session so
    /// the close frame can go out past what the session holds already.
    pub(super) fn abort(&self) -> Session {
        let mut inner = self.lock();
        inner.queue.clear();
        inner.closed = true;
        inner.done = true;
        if let Some(w) = inner.writer.take() {
            w.wake();
        }
        let session = inner.session.clone();
        drop(inner);
        self.space.notify_waiters();
        session
    }

    /// Ends the connection after what is queued (a close without a code
    /// unless a close frame is queued already).
    pub(super) fn finish(&self) {
        let mut inner = self.lock();
        if !inner.closed {
            let _ = self.enqueue(&mut inner, Out::Close(None));
        }
    }
}

enum Sent {
    Yes,
    NotYet(Out),
    /// The session is gone.
    Gone,
}

fn truncate_reason(mut reason: CloseReason) -> CloseReason {
    if let Some(d) = reason.description.as_mut() {
        d.truncate(d.floor_char_boundary(MAX_CLOSE_REASON));
    }
    reason
}

/// The writer task of a connection.
pub(super) async fn write(outlet: std::sync::Arc<Outlet>) {
    std::future::poll_fn(|cx| outlet.poll_write(cx)).await;
}
