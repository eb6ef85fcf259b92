//! The Server-Sent Events route: `GET` at the events path, served by the endpoint
//! with its `GET`s run through the filter tree, and streamed with warp's `sse`
//! reply.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use batch_core::BatchEndpoint;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::Method;
use http::request::Parts;
use warp::reply::Response;
use warp::sse::Event;
use warp::{Filter, Rejection, Reply};

use crate::request::parts;
use crate::{Ops, matching, task};

/// Answers a `GET` of the events path ([`BatchEndpoint::is_events_path`]).
pub(crate) fn filter(
    endpoint: BatchEndpoint,
    executor: Ops,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let matcher = endpoint.clone();
    matching(move |method, path| method == Method::GET && matcher.is_events_path(path))
        .and(parts())
        .then(move |parts: Parts| answer(endpoint.clone(), executor.clone(), parts))
}

async fn answer(endpoint: BatchEndpoint, executor: Ops, parts: Parts) -> Response {
    // The admission probe runs through the filter tree: not from inside this route.
    let opening = task::spawn(async move {
        endpoint
            .serve_events(executor, &parts)
            .await
            .map(|response| response.map(|stream| Shared(Mutex::new(Box::pin(stream)))))
    });
    match opening.await {
        Ok(Ok(response)) => {
            let (head, stream) = response.into_parts();
            let mut reply = warp::sse::reply(stream.map(|chunk| chunk.map(event))).into_response();
            reply.headers_mut().extend(head.headers);
            reply
        }
        Ok(Err(refusal)) => refusal.into_response(),
        Err(err) => task::failed(&err).into_response(),
    }
}

/// One event as the endpoint framed it, for warp's `sse` reply to frame again.
fn event(chunk: Bytes) -> Event {
    let text = String::from_utf8_lossy(&chunk);
    let mut event = Event::default();
    let mut data: Option<String> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("event: ") {
            event = event.event(name);
        } else if let Some(id) = line.strip_prefix("id: ") {
            event = event.id(id);
        } else if let Some(line) = line.strip_prefix("data: ") {
            match &mut data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(line);
                }
                None => data = Some(line.to_owned()),
            }
        } else if let Some(comment) = line.strip_prefix(": ") {
            event = event.comment(comment);
        }
    }
    match data {
        Some(data) => event.data(data),
        None => event,
    }
}

/// warp's replies want a `Sync` stream; the endpoint's is polled from one place
/// only, so a lock that is never contended makes it one.
struct Shared<S>(Mutex<Pin<Box<S>>>);

impl<S: Stream<Item = Result<Bytes, Infallible>>> Stream for Shared<S> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().0.get_mut() {
            Ok(stream) => stream.as_mut().poll_next(cx),
            Err(poisoned) => poisoned.into_inner().as_mut().poll_next(cx),
        }
    }
}
