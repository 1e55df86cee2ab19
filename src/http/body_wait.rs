//! How long a request waited for its client's body.
//!
//! A client that sends its body slowly keeps its request open without the
//! service doing anything: that time is the client's, and must not read as
//! a slow service (`tgvisor_http_request_duration_seconds`, the `api`
//! check, the latency alerts). [`time_body`] puts a clock around the
//! request's payload: it runs from each read of the body that has to wait
//! for bytes until they arrive (or until the request ends, if they never
//! do). What the request took, less that, is the time the service spent.

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::Bytes;
use futures_util::Stream;
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// Time spent waiting for the client's bytes; shared by the request's
/// payload and its middleware (one worker thread: no locking).
#[derive(Default)]
pub struct BodyClock {
    /// Waits that ended.
    waited: Cell<Duration>,
    /// A read waiting since then.
    since: Cell<Option<Instant>>,
}

impl BodyClock {
    /// Everything waited so far, a wait still going on included.
    pub fn waited(&self) -> Duration {
        self.waited.get() + self.since.get().map_or(Duration::ZERO, |s| s.elapsed())
    }

    fn pending(&self) {
        if self.since.get().is_none() {
            self.since.set(Some(Instant::now()));
        }
    }

    fn ready(&self) {
        if let Some(since) = self.since.take() {
            self.waited.set(self.waited.get() + since.elapsed());
        }
    }
}

/// The payload, with the clock around its reads.
struct Timed {
    inner: Payload,
    clock: Rc<BodyClock>,
}

impl Stream for Timed {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        match polled {
            Poll::Pending => self.clock.pending(),
            Poll::Ready(_) => self.clock.ready(),
        }
        polled
    }
}

/// Puts a clock around `req`'s body; `None` when it has none to wait for
/// (no body, or a protocol upgrade: a WebSocket's stream is the
/// connection, not a body).
pub fn time_body(req: &mut ServiceRequest) -> Option<Rc<BodyClock>> {
    if req.headers().contains_key(header::UPGRADE) {
        return None;
    }
    let payload = std::mem::replace(req.parts_mut().1, Payload::None);
    if matches!(payload, Payload::None) {
        return None;
    }
    let clock = Rc::new(BodyClock::default());
    let timed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(Timed {
        inner: payload,
        clock: clock.clone(),
    });
    req.set_payload(Payload::from(timed));
    Some(clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(rx: tokio::sync::mpsc::UnboundedReceiver<Bytes>) -> (Timed, Rc<BodyClock>) {
        let mut rx = rx;
        let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(futures_util::stream::poll_fn(move |cx| {
                rx.poll_recv(cx).map(|b| b.map(Ok))
            }));
        let clock = Rc::new(BodyClock::default());
        let t = Timed {
            inner: Payload::from(stream),
            clock: clock.clone(),
        };
        (t, clock)
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_time_spent_waiting_for_bytes_counts() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (mut body, clock) = timed(rx);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut read = || Pin::new(&mut body).poll_next(&mut cx);

        tx.send(Bytes::from_static(b"there")).unwrap();
        assert!(read().is_ready());
        assert_eq!(clock.waited(), Duration::ZERO, "bytes already there");
        // The client pauses 2 s mid-body.
        assert!(read().is_pending());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(clock.waited(), Duration::from_secs(2), "a wait going on");
        tx.send(Bytes::from_static(b"late")).unwrap();
        assert!(read().is_ready());
        // The service then works 3 s: not the client's.
        tokio::time::advance(Duration::from_secs(3)).await;
        drop(tx);
        assert!(matches!(read(), Poll::Ready(None)));
        assert_eq!(clock.waited(), Duration::from_secs(2));
    }
}
