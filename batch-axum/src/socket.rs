//! The socket endpoint on axum's own WebSocket support: the upgrade is admitted by
//! the endpoint, then served with its messages run through the router.

use std::future::ready;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame as AxumClose, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::Response;
use batch_core::{BatchEndpoint, CloseFrame, Frame, ServiceExecutor};
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use tower::ServiceBuilder;
use tower::util::MapRequest;

/// The router socket messages run through, with the routing bookkeeping of the
/// upgrade request dropped from each, as for batch ops.
type Ops = ServiceExecutor<MapRequest<Router, fn(Request<Full<Bytes>>) -> Request<Full<Bytes>>>>;

/// Answers requests for the socket path.
#[derive(Clone)]
pub(crate) struct Sockets {
    endpoint: BatchEndpoint,
    ops: Ops,
}

impl Sockets {
    /// Sockets of `endpoint`, their messages run through `router`.
    pub(crate) fn new(endpoint: BatchEndpoint, router: Router) -> Self {
        let forget: fn(Request<Full<Bytes>>) -> Request<Full<Bytes>> = crate::forget_routing;
        let ops = ServiceExecutor::new(ServiceBuilder::new().map_request(forget).service(router));
        Self { endpoint, ops }
    }

    /// Answers a request for the socket path: a WebSocket upgrade the endpoint admits
    /// is answered 101 and served on a task of its own; a refused one gets the
    /// endpoint's refusal, and anything else 426.
    pub(crate) async fn answer(self, request: Request) -> Response {
        let (mut parts, _body) = request.into_parts();
        // Taken out of the parts, so no op inherits the means to take over the
        // connection.
        let Ok(upgrade) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await else {
            return self.endpoint.upgrade_required().map(Body::from);
        };
        let Self { endpoint, ops } = self;
        let admission = match endpoint.admit_socket(&ops, &parts).await {
            Ok(admission) => admission,
            Err(refusal) => return refusal.map(Body::from),
        };
        let limit = admission.read_limit();
        upgrade
            .read_buffer_size(admission.read_buffer())
            .max_message_size(limit)
            .max_frame_size(limit)
            .on_upgrade(move |socket| async move {
                let (outgoing, incoming) = socket.split();
                let incoming = incoming.map(|message| message.map(frame));
                let outgoing = outgoing.with(|frame| ready(Ok::<_, axum::Error>(message(frame))));
                endpoint
                    .serve_socket(ops, admission, incoming, outgoing)
                    .await;
            })
    }
}

/// An axum message as a frame.
fn frame(message: Message) -> Frame {
    match message {
        Message::Text(text) => Frame::Text(Bytes::from(text)),
        Message::Binary(bytes) => Frame::Binary(bytes),
        Message::Ping(bytes) => Frame::Ping(bytes),
        Message::Pong(bytes) => Frame::Pong(bytes),
        Message::Close(close) => Frame::Close(close.map(|close| CloseFrame {
            code: close.code,
            reason: close.reason.to_string(),
        })),
    }
}

/// A frame as an axum message.
fn message(frame: Frame) -> Message {
    match frame {
        // The endpoint writes text as JSON, so it is always UTF-8.
        Frame::Text(text) => match Utf8Bytes::try_from(text.clone()) {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Binary(text),
        },
        Frame::Binary(bytes) => Message::Binary(bytes),
        Frame::Ping(bytes) => Message::Ping(bytes),
        Frame::Pong(bytes) => Message::Pong(bytes),
        Frame::Close(close) => Message::Close(close.map(|close| AxumClose {
            code: close.code,
            reason: Utf8Bytes::from(close.reason),
        })),
    }
}
