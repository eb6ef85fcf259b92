//! The bodies a [`BatchService`](super::BatchService) hands on: what the wrapped
//! service reads, and what the client is answered with.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{Full, StreamBody};

use crate::changes::Watch;
use crate::executor::BoxError;

/// The body of a request reaching the service a [`BatchLayer`](super::BatchLayer)
/// wraps: a direct request's own body, passed through as it streams (and watched
/// for the change it makes when sockets are on), or an op's, which the engine
/// holds whole.
#[derive(Debug)]
pub struct RequestBody<B> {
    kind: RequestKind<B>,
}

#[derive(Debug)]
enum RequestKind<B> {
    Direct(B),
    Watched(B, Arc<Watch>),
    Op(Full<Bytes>),
}

impl<B> RequestBody<B> {
    pub(super) fn direct(body: B) -> Self {
        Self {
            kind: RequestKind::Direct(body),
        }
    }

    pub(super) fn watched(body: B, watch: Arc<Watch>) -> Self {
        Self {
            kind: RequestKind::Watched(body, watch),
        }
    }

    pub(super) fn op(body: Bytes) -> Self {
        Self {
            kind: RequestKind::Op(Full::new(body)),
        }
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            RequestKind::Direct(body) => poll(body, cx),
            RequestKind::Watched(body, watch) => {
                let frame = poll(body, cx);
                if let Poll::Ready(Some(Ok(frame))) = &frame {
                    if let Some(data) = frame.data_ref() {
                        watch.request_data(data);
                    }
                }
                frame
            }
            RequestKind::Op(body) => poll(body, cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            RequestKind::Direct(body) | RequestKind::Watched(body, _) => body.is_end_stream(),
            RequestKind::Op(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            RequestKind::Direct(body) | RequestKind::Watched(body, _) => body.size_hint(),
            RequestKind::Op(body) => body.size_hint(),
        }
    }
}

/// The body of a [`BatchService`](super::BatchService)'s answer: a batch's or a
/// socket upgrade's, or the wrapped service's own, passed through as it streams (and
/// watched for the change it made when sockets are on).
#[derive(Debug)]
pub struct ResponseBody<B> {
    kind: ResponseKind<B>,
}

#[derive(Debug)]
enum ResponseKind<B> {
    /// The endpoint's answer: whole, or streamed as its batch runs (a streamed
    /// batch, Server-Sent Events). The mutex only
    /// makes the body `Sync` (warp asks that of bodies) around a batch that is not:
    /// the body is only ever reached through `&mut`, which never locks.
    Endpoint(Mutex<UnsyncBoxBody<Bytes, Infallible>>),
    Direct(B),
    Watched(B, Arc<Watch>),
}

impl<B> ResponseBody<B> {
    /// A Server-Sent Events stream, as long as it is read.
    pub(super) fn events(
        stream: impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
    ) -> Self {
        Self::endpoint(StreamBody::new(stream.map_ok(Frame::data)))
    }

    pub(super) fn endpoint<E>(body: E) -> Self
    where
        E: Body<Data = Bytes, Error = Infallible> + Send + 'static,
    {
        Self {
            kind: ResponseKind::Endpoint(Mutex::new(UnsyncBoxBody::new(body))),
        }
    }

    pub(super) fn direct(body: B) -> Self {
        Self {
            kind: ResponseKind::Direct(body),
        }
    }

    pub(super) fn watched(body: B, watch: Arc<Watch>) -> Self {
        Self {
            kind: ResponseKind::Watched(body, watch),
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            ResponseKind::Endpoint(body) => poll(exclusive(body), cx),
            ResponseKind::Direct(body) => poll(body, cx),
            ResponseKind::Watched(body, watch) => {
                let frame = poll(body, cx);
                match &frame {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(data) = frame.data_ref() {
                            watch.response_data(data);
                        }
                        // A server that sent content-length bytes polls no further:
                        // the end is when the body says nothing is left.
                        if body.is_end_stream() || body.size_hint().exact() == Some(0) {
                            watch.response_end();
                        }
                    }
                    Poll::Ready(None) => watch.response_end(),
                    _ => {}
                }
                frame
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            ResponseKind::Endpoint(body) => body.lock().is_ok_and(|body| body.is_end_stream()),
            // A watched body is polled until it has nothing left, where its change is
            // published.
            ResponseKind::Watched(..) => false,
            ResponseKind::Direct(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            ResponseKind::Endpoint(body) => body
                .lock()
                .map_or_else(|_| SizeHint::default(), |body| body.size_hint()),
            ResponseKind::Direct(body) | ResponseKind::Watched(body, _) => body.size_hint(),
        }
    }
}

/// The body in `mutex`, reached through `&mut`: no lock is taken, and no poll ever
/// panics while holding one, so it is never poisoned.
fn exclusive<B>(mutex: &mut Mutex<B>) -> &mut B {
    match mutex.get_mut() {
        Ok(body) => body,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn poll<B>(body: &mut B, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    Pin::new(body)
        .poll_frame(cx)
        .map(|frame| frame.map(|frame| frame.map_err(Into::into)))
}
