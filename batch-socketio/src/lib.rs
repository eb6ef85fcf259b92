//! Real-time resources over Socket.IO: Flask-SocketAPI's clients, unmodified,
//! against the application's own REST routes.
//!
//! [`layer`] serves `/socket.io/` (Engine.IO v4, Socket.IO v5, polling and
//! WebSocket transports, through [socketioxide]) in front of any tower service.
//! Each client gets a [`batch_core::Session`], exactly as a client of the
//! endpoint's `/socket` WebSocket does, and speaks Flask-SocketAPI's events on the
//! default namespace `/`:
//!
//! | client event | data | runs through the app | acknowledgement data |
//! |---|---|---|---|
//! | `subscribe` | the URI, a string | `GET` of its path | `state` or `error` |
//! | `unsubscribe` | the URI, a string | nothing | `unsubscribed` |
//! | `create` | `{uri, attributes}` (a list URI) | `POST` of the list path | `result` |
//! | `patch` | `{uri, patch}` | `PATCH` of the path | `result` |
//! | `delete` | `{uri}` | `DELETE` of the path | `result` |
//!
//! A missing `attributes` or `patch` is `{}`, as Flask-SocketAPI reads it. A client
//! that asks for an acknowledgement gets the direct answer, the same JSON object a
//! WebSocket client is sent (`{"type": "result", "uri": …, "status": …, "headers":
//! …, "body": …}`, …). Server events:
//!
//! - `state`: `{"type": "state", "uri": U, "resource": BODY}`, a subscription's
//!   state, before any change to it;
//! - `create`, `patch`, `delete`: the change events of what the client subscribed
//!   to, whichever way the change was made (a Socket.IO event, a batch op, a plain
//!   HTTP request): `{"type": "create", "uri": L, "resource": BODY}`,
//!   `{"type": "patch", "uri": U, "patch": BODY}`, `{"type": "delete", "uri": U}`;
//! - `api_error`: `{"error": NAME, "message": TEXT, "status": S}` for a refused
//!   event (bad data or URI, too many subscriptions) or a subscription whose `GET`
//!   did not answer 2xx. `NAME` is Flask-SocketAPI's: `NotFoundError` (404),
//!   `InvalidURIError` (422), `ServerError` (5xx), `InvalidRequestError` (any other).
//!
//! A `result`, whatever its status, is only an acknowledgement.
//!
//! # Identity, admission and limits
//!
//! A client is admitted by [`BatchEndpoint::admit_socket`] with the request that
//! opened its Engine.IO connection, before it counts as connected: the origin
//! allow list, the cap on open sockets and the application's middleware (a plain
//! `GET` of the socket path) apply as to a WebSocket upgrade. A refused client gets
//! a `connect_error` whose message is the status and body of the HTTP refusal.
//! Every op of an admitted client carries that request's headers (`Authorization`,
//! `Cookie`, … by the endpoint's header policy) and extensions.
//!
//! The endpoint's [`SocketConfig`](batch_core::SocketConfig) sets the rest: the
//! subscription limit, `max_in_flight` messages running at once per client (later
//! ones wait), `max_message` as the largest Engine.IO payload and WebSocket
//! message, `max_queued` as the socket's outgoing queue, `ping_interval`, and
//! `idle_timeout` as the interval plus Engine.IO's ping timeout. A client whose
//! queue overflows is sent nothing more and disconnected. Disconnecting ends the
//! session and its subscriptions.
//!
//! # Example
//!
//! The layer goes outside the batch endpoint, so the endpoint never takes Engine.IO
//! polling requests for requests to the application; ops run through the router
//! given to [`layer`]:
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use batch_core::{BatchEndpoint, Config, SocketConfig};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let routes = Router::new().route("/items/{id}", get(|| async { "an item" }));
//! let endpoint = BatchEndpoint::new(Config::builder().sockets(SocketConfig::default()).build()?);
//! let app = batch_axum::with_batch(routes.clone(), endpoint.clone())
//!     .layer(batch_socketio::layer(endpoint, routes));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! socketioxide wants the inner service's response body error to be a
//! `std::error::Error`: in front of [`batch_core::BatchLayer`], whose body error is
//! a [`BoxError`], map it (`std::io::Error::other` does).

// The README's example is compiled (and run, unless marked `no_run`) with the doc
// tests, so the page crates.io shows cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod connection;
mod events;
mod outbox;

use std::sync::Arc;
use std::time::Duration;

use batch_core::{BatchEndpoint, BoxError};
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use socketioxide::SocketIo;
use socketioxide::handler::ConnectHandler;
use tower::Service;

pub use socketioxide::layer::SocketIoLayer;

use connection::{Admit, Sessions};

/// The shortest time Engine.IO waits for a pong, whatever the idle timeout.
const MIN_PING_TIMEOUT: Duration = Duration::from_secs(1);

/// A tower layer serving Socket.IO at `/socket.io/` for `endpoint`'s real-time
/// resources; every other request goes to the service it wraps. Each client event
/// runs as an op through `service` (usually the same routes the endpoint batches),
/// with the identity of the request that opened the client's connection.
///
/// Sockets must be on in `endpoint`'s config; if they are not, every client is
/// refused (`404`).
pub fn layer<S, B>(endpoint: impl Into<BatchEndpoint>, service: S) -> SocketIoLayer
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let endpoint = endpoint.into();
    let mut builder = SocketIo::builder();
    if let Some(sockets) = endpoint.config().sockets() {
        let max_message = sockets.max_message();
        builder = builder
            .ping_interval(sockets.ping_interval())
            .ping_timeout(
                sockets
                    .idle_timeout()
                    .saturating_sub(sockets.ping_interval())
                    .max(MIN_PING_TIMEOUT),
            )
            .max_payload(u64::try_from(max_message).unwrap_or(u64::MAX))
            .ws_max_message_size(max_message)
            .max_buffer_size(sockets.max_queued());
    }
    let (layer, io) = builder.build_layer();
    let admit = Admit(Arc::new(Sessions::new(endpoint, service)));
    // The middleware did everything: a client is connected with its session open.
    io.ns("/", (async || {}).with(admit));
    layer
}
