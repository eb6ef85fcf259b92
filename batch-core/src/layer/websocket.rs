//! Sockets on plain hyper: a [`BatchService`](super::BatchService) answers an
//! upgrade at the socket path itself, over hyper's upgrade and tungstenite.

use std::future::ready;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header, request::Parts};
use http_body::Body;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::{self, Role, WebSocketConfig};
use tower::Service;

use super::body::RequestBody;
use super::ops::Ops;
use crate::endpoint::BatchEndpoint;
use crate::executor::BoxError;
use crate::problem::Problem;
use crate::socket::{CloseFrame, Frame};

/// Answers a request for the socket path: a WebSocket upgrade the endpoint admits
/// is answered 101 and served on a task of its own; anything else is refused.
pub(super) async fn answer<S, ReqBody, ResBody>(
    endpoint: &BatchEndpoint,
    ops: Ops<S, ReqBody>,
    request: Request<ReqBody>,
) -> Response<Bytes>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ReqBody: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let (mut parts, _) = request.into_parts();
    let Some(key) = upgrade_key(&parts) else {
        return endpoint.upgrade_required();
    };
    // Taken out first: no op inherits the means to take over the connection.
    let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
        return Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server does not hand over upgraded connections (serve it with upgrades)",
        )
        .into_response();
    };
    let admission = match endpoint.admit_socket(&ops, &parts).await {
        Ok(admission) => admission,
        Err(refusal) => return refusal,
    };
    let (limit, buffer) = (admission.read_limit(), admission.read_buffer());
    let endpoint = endpoint.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(buffer)
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit));
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        let (outgoing, incoming) = socket.split();
        let incoming = incoming.filter_map(|message| ready(message.map(frame).transpose()));
        let outgoing = outgoing.with(|frame| {
            ready(Ok::<_, tokio_tungstenite::tungstenite::Error>(message(
                frame,
            )))
        });
        endpoint
            .serve_socket(ops, admission, incoming, outgoing)
            .await;
    });
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// The `sec-websocket-key` of a WebSocket upgrade (RFC 6455 §4.2.1), if `parts` is one.
fn upgrade_key(parts: &Parts) -> Option<HeaderValue> {
    let has = |name: header::HeaderName, token: &str| {
        parts.headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    let version = parts
        .headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    (parts.method == http::Method::GET
        && has(header::UPGRADE, "websocket")
        && has(header::CONNECTION, "upgrade")
        && version)
        .then(|| parts.headers.get(header::SEC_WEBSOCKET_KEY).cloned())
        .flatten()
}

/// A tungstenite message as a frame; raw frames, never read here, are skipped.
fn frame(message: Message) -> Option<Frame> {
    Some(match message {
        Message::Text(text) => Frame::Text(Bytes::from(text)),
        Message::Binary(bytes) => Frame::Binary(bytes),
        Message::Ping(bytes) => Frame::Ping(bytes),
        Message::Pong(bytes) => Frame::Pong(bytes),
        Message::Close(close) => Frame::Close(close.map(|close| CloseFrame {
            code: close.code.into(),
            reason: close.reason.to_string(),
        })),
        Message::Frame(_) => return None,
    })
}

/// A frame as a tungstenite message.
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
        Frame::Close(close) => Message::Close(close.map(|close| protocol::CloseFrame {
            code: close.code.into(),
            reason: close.reason.into(),
        })),
    }
}
