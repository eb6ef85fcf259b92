//! The batch route: requests for the batch path, answered by the endpoint.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use batch_core::{BatchEndpoint, Problem};
use bytes::Bytes;
use futures::Stream;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::{mpsc, oneshot};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::request::{into_body, parts};
use crate::task::AbortOnDrop;
use crate::{Ops, matching, task};

/// Answers every request for the batch path ([`Config::is_batch_path`]); ops run
/// through `executor`, on a task of the batch's own.
///
/// [`Config::is_batch_path`]: batch_core::Config::is_batch_path
pub(crate) fn filter(
    endpoint: BatchEndpoint,
    executor: Ops,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let matcher = endpoint.clone();
    matching(move |_, path| matcher.config().is_batch_path(path))
        .and(parts())
        .and(warp::body::stream())
        .then(move |parts, body| {
            let (endpoint, executor) = (endpoint.clone(), executor.clone());
            let request = Request::from_parts(parts, into_body(body));
            answer(endpoint, executor, request)
        })
}

/// The endpoint's answer to `request`. The batch runs on a task of its own, which
/// goes on writing a streamed answer after its head is sent: the reply reads what
/// the task writes, and dropping the reply (the client went away) aborts the task.
async fn answer(
    endpoint: BatchEndpoint,
    executor: Ops,
    request: Request<crate::request::Body>,
) -> Response {
    let (head, answered) = oneshot::channel();
    // One frame ahead: the task's own body holds the rest, as far as it runs ahead.
    let (frames, taken) = mpsc::channel(1);
    let batch = task::spawn(async move {
        let (parts, mut body) = endpoint.respond(executor, request).await.into_parts();
        if !body.is_streamed() {
            let bytes = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let _ = head.send(http::Response::from_parts(parts, Some(bytes)));
            return;
        }
        if head.send(http::Response::from_parts(parts, None)).is_err() {
            return;
        }
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map(|frame| frame.into_data());
            if let Ok(data) = data {
                if frames.send(data).await.is_err() {
                    return;
                }
            }
        }
    });
    let head = answered.await;
    let response = match head {
        Ok(head) => head,
        // The task ended without a head: it panicked or was cancelled.
        Err(_) => {
            return match batch.await {
                Ok(()) => Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the request ended without an answer",
                )
                .into_response()
                .into_response(),
                Err(err) => task::failed(&err).into_response(),
            };
        }
    };
    let (parts, whole) = response.into_parts();
    let mut reply = match whole {
        Some(bytes) => http::Response::new(bytes).into_response(),
        None => warp::reply::stream(Forwarded {
            taken,
            _batch: batch,
        })
        .into_response(),
    };
    *reply.status_mut() = parts.status;
    *reply.headers_mut() = parts.headers;
    reply
}

/// What the batch's task writes of a streamed answer, as the reply's body; the task
/// lives as long as the reply does.
struct Forwarded {
    taken: mpsc::Receiver<Bytes>,
    _batch: AbortOnDrop<()>,
}

impl Stream for Forwarded {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.taken.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}
