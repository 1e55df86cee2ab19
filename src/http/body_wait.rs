//! How long a request waited for its client's body.
//!
//! A client that sends its body slowly keeps its request open without the
//! service doing anything: that time is the client's, and must not read as
//! a slow service (`tgvisor_http_request_duration_seconds`, the `api`
//! check, the latency alerts). [`time_body`] puts a clock around the
//! request's payload: it runs from each read of the body that has to wait
//! for bytes until they arrive (or until the request ends, if they never
//! do). What the request took, less that, is the time the service spent.
//!
//! The same wrapper enforces the body's deadline (see [`super::body`]):
//! one stream around each body, not one per concern.

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

/// The payload, with the clock around its reads and, when it has one, its
/// deadline.
struct Timed {
    inner: Payload,
    clock: Rc<BodyClock>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    done: bool,
}

impl Stream for Timed {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(item) = &polled {
            self.clock.ready();
            self.done = item.is_none();
            return polled;
        }
        self.clock.pending();
        let late = self
            .deadline
            .as_mut()
            .is_some_and(|d| std::future::Future::poll(d.as_mut(), cx).is_ready());
        if late {
            self.done = true;
            self.clock.ready();
            return Poll::Ready(Some(Err(super::body::timed_out())));
        }
        Poll::Pending
    }
}

/// Puts a clock, and `deadline` when given, around `req`'s body; `None`
/// when it has none to wait for (no body, or a protocol upgrade: a
/// WebSocket's stream is the connection, not a body).
pub fn time_body(req: &mut ServiceRequest, deadline: Option<Duration>) -> Option<Rc<BodyClock>> {
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
        deadline: deadline.map(|d| Box::pin(tokio::time::sleep(d))),
        done: false,
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
            deadline: None,
            done: false,
        };
        (t, clock)
    }

    fn with_deadline(chunks: Vec<&'static [u8]>, then_silence: bool) -> Timed {
        use futures_util::StreamExt as _;
        let chunks =
            futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))));
        let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = if then_silence {
            Box::pin(chunks.chain(futures_util::stream::pending()))
        } else {
            Box::pin(chunks)
        };
        Timed {
            inner: Payload::from(stream),
            clock: Rc::default(),
            deadline: Some(Box::pin(tokio::time::sleep(Duration::from_secs(10)))),
            done: false,
        }
    }

    #[actix_rt::test]
    async fn a_body_that_stops_arriving_fails_at_its_deadline() {
        tokio::time::pause();
        use futures_util::StreamExt as _;
        let mut body = with_deadline(vec![b"{\"partial\":"], true);
        assert_eq!(body.next().await.unwrap().unwrap(), "{\"partial\":");
        // Nothing more comes: the read waits until the deadline, then fails.
        let started = Instant::now();
        let err = body.next().await.unwrap().unwrap_err();
        assert!(crate::http::body::is_body_timeout(&err), "{err}");
        // The deadline, to within the 1 ms tick tokio's timer rounds up to.
        let waited = started.elapsed();
        let deadline = Duration::from_secs(10);
        assert!(
            waited >= deadline && waited <= deadline + Duration::from_millis(1),
            "{waited:?}"
        );
        assert!(body.next().await.is_none());
    }

    #[actix_rt::test]
    async fn a_body_that_arrives_in_time_is_untouched() {
        tokio::time::pause();
        use futures_util::StreamExt as _;
        let mut body = with_deadline(vec![b"{", b"}"], false);
        assert_eq!(body.next().await.unwrap().unwrap(), "{");
        assert_eq!(body.next().await.unwrap().unwrap(), "}");
        assert!(body.next().await.is_none());
    }

    #[actix_rt::test]
    async fn only_the_time_spent_waiting_for_bytes_counts() {
        tokio::time::pause();
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
