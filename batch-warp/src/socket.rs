//! The socket route: WebSocket upgrades at the socket path, on warp's own `ws`
//! filter, admitted by the endpoint and served with their messages run through the
//! filter tree.

use batch_core::{BatchEndpoint, CloseFrame, Frame};
use futures::{SinkExt, StreamExt};
use http::request::Parts;
use tracing::Instrument;
use warp::filters::ws::{Message, Ws};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::request::parts;
use crate::{Ops, matching, task};

/// Answers every request for the socket path ([`BatchEndpoint::is_socket_path`]):
/// an upgrade the endpoint admits is served, a refused one gets the endpoint's
/// refusal, anything else 426.
pub(crate) fn filter(
    endpoint: BatchEndpoint,
    executor: Ops,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let matcher = endpoint.clone();
    let upgrade = warp::ws().map(Some).or(warp::any().map(|| None)).unify();
    matching(move |_, path| matcher.is_socket_path(path))
        .and(upgrade)
        .and(parts())
        .then(move |upgrade: Option<Ws>, parts: Parts| {
            answer(endpoint.clone(), executor.clone(), upgrade, parts)
        })
}

async fn answer(
    endpoint: BatchEndpoint,
    executor: Ops,
    upgrade: Option<Ws>,
    parts: Parts,
) -> Response {
    let Some(upgrade) = upgrade else {
        return endpoint.upgrade_required().into_response();
    };
    // The probe runs through the filter tree: not from inside this route.
    let admitting = {
        let (endpoint, executor) = (endpoint.clone(), executor.clone());
        task::spawn(async move { endpoint.admit_socket(&executor, &parts).await })
    };
    let admission = match admitting.await {
        Ok(Ok(admission)) => admission,
        Ok(Err(refusal)) => return refusal.into_response(),
        Err(err) => return task::failed(&err).into_response(),
    };
    let limit = admission.read_limit();
    // warp serves the socket on a task of its own: in the upgrade request's span.
    let span = tracing::Span::current();
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            async move {
                let (outgoing, incoming) = socket.split();
                let incoming =
                    incoming.filter_map(|message| async { message.map(frame).transpose() });
                let outgoing =
                    outgoing.with(|frame| async { Ok::<_, warp::Error>(message(frame)) });
                endpoint
                    .serve_socket(executor, admission, incoming, outgoing)
                    .await;
            }
            .instrument(span)
        })
        .into_response()
}

/// A warp message as a frame; raw frames, never read here, are skipped.
fn frame(message: Message) -> Option<Frame> {
    Some(if message.is_text() {
        Frame::Text(message.into_bytes())
    } else if message.is_binary() {
        Frame::Binary(message.into_bytes())
    } else if message.is_ping() {
        Frame::Ping(message.into_bytes())
    } else if message.is_pong() {
        Frame::Pong(message.into_bytes())
    } else if message.is_close() {
        Frame::Close(message.close_frame().map(|(code, reason)| CloseFrame {
            code,
            reason: reason.to_owned(),
        }))
    } else {
        return None;
    })
}

/// A frame as a warp message.
fn message(frame: Frame) -> Message {
    match frame {
        // The endpoint writes text as JSON, so it is always UTF-8.
        Frame::Text(text) => match std::str::from_utf8(&text) {
            Ok(text) => Message::text(text),
            Err(_) => Message::binary(text),
        },
        Frame::Binary(bytes) => Message::binary(bytes),
        Frame::Ping(bytes) => Message::ping(bytes),
        Frame::Pong(bytes) => Message::pong(bytes),
        Frame::Close(Some(close)) => Message::close_with(close.code, close.reason),
        Frame::Close(None) => Message::close(),
    }
}
