//! A deadline on reading a request's body.
//!
//! A client that sends its headers and then part of a body (or nothing)
//! would otherwise hold its connection, a file descriptor and a worker's
//! attention for as long as it likes; enough of them exhausted the
//! process' descriptors and `/health` stopped answering. Every request that
//! announces a body (`Content-Length` above 0, or chunked) must deliver
//! all of it within `server.body_timeout_ms` of its headers; past that the
//! body reads as an error, the extractor answers 408 `body_timeout`, and
//! the connection is closed. Uploads are the exception: their bodies are
//! long by nature and have their own idle timeout
//! (`uploads.body_idle_timeout_ms`), and a WebSocket upgrade has no body.

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};
use futures_util::Stream;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// What a payload stream is boxed as.
type BoxedBody = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

/// The route whose body is an upload, timed by its own idle timeout.
pub const UPLOAD_ROUTE: &str = "/api/v1/accounts/{id}/uploads";

/// The message of the error a late body reads as.
const TIMED_OUT: &str = "the request body did not arrive in time";

/// Whether `err` is a body that missed its deadline.
pub fn is_body_timeout(err: &PayloadError) -> bool {
    matches!(err, PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut && e.to_string() == TIMED_OUT)
}

/// A body stream that fails once its deadline passes.
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            self.done = item.is_none();
            return Poll::Ready(item);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.done = true;
            let e = std::io::Error::new(std::io::ErrorKind::TimedOut, TIMED_OUT);
            return Poll::Ready(Some(Err(PayloadError::Io(e))));
        }
        Poll::Pending
    }
}

/// Whether the request announces a body.
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    length.is_some_and(|n| n > 0) || headers.contains_key(TRANSFER_ENCODING)
}

/// Middleware: puts the deadline on every body but an upload's.
pub async fn deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let timeout = req
        .app_data::<Data<super::AppState>>()
        .map(|s| Duration::from_millis(s.settings.server.body_timeout_ms));
    let upload = req.match_pattern().as_deref() == Some(UPLOAD_ROUTE);
    if let Some(timeout) = timeout.filter(|_| !upload && has_body(&req)) {
        let stream = Deadline {
            inner: req.take_payload(),
            sleep: Box::pin(tokio::time::sleep(timeout)),
            done: false,
        };
        req.set_payload(Payload::from(Box::pin(stream) as BoxedBody));
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{StreamExt as _, stream};

    fn body(chunks: Vec<&'static [u8]>, then_silence: bool) -> Deadline {
        let chunks = stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))));
        let stream: BoxedBody = if then_silence {
            Box::pin(chunks.chain(stream::pending()))
        } else {
            Box::pin(chunks)
        };
        Deadline {
            inner: Payload::from(stream),
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(10))),
            done: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_fails_at_its_deadline() {
        let mut body = body(vec![b"{\"partial\":"], true);
        assert_eq!(body.next().await.unwrap().unwrap(), "{\"partial\":");
        // Nothing more comes: the read waits until the deadline, then fails.
        let started = tokio::time::Instant::now();
        let err = body.next().await.unwrap().unwrap_err();
        assert!(is_body_timeout(&err), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert!(body.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_arrives_in_time_is_untouched() {
        let mut body = body(vec![b"{", b"}"], false);
        assert_eq!(body.next().await.unwrap().unwrap(), "{");
        assert_eq!(body.next().await.unwrap().unwrap(), "}");
        assert!(body.next().await.is_none());
    }
}
