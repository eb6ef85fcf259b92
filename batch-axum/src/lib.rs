//! HTTP request batching for [axum]: one endpoint that runs many operations
//! through your `Router`, in-process, with every layer the router has.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use batch_core::Config;
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let app = Router::new()
//!     .route("/items/{id}", get(|| async { "an item" }));
//! // Mount the batch endpoint last, after `with_state` and the layers ops must pass.
//! let app = batch_axum::with_batch(app, Config::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! # How ops run
//!
//! [`with_batch`] puts [`batch_core::BatchLayer`] in front of the router: a request
//! for the batch path ([`Config::is_batch_path`]) is answered by the batch endpoint,
//! every other request goes to the router unchanged. Each op is sent to a clone of
//! the router given to `with_batch` (`oneshot`), so it passes every layer applied
//! *before* `with_batch`, exactly like a direct request. Layers applied *after*
//! `with_batch` wrap every request that reaches the server, the batch included,
//! but not the ops inside it: put authentication that should run once per batch
//! there, and have it insert an extension.
//!
//! Ops inherit the outer request's headers (see [`batch_core::HeaderPolicy`]) and a
//! clone of its extensions, so `Extension<CurrentUser>` set by an outer layer and
//! `ConnectInfo` reach every op. axum's own routing bookkeeping (`MatchedPath`,
//! `OriginalUri`, `NestedPath`) is removed first, so an op's extractors see the op's
//! route, not `/batch`.
//!
//! The router must be a `Router<()>`: call `with_state` before `with_batch`, on the
//! top-level router. Requests for the batch path never reach the router, and ops
//! aimed at it are refused with 422 before anything runs, so batches cannot nest.
//!
//! # Sockets
//!
//! With sockets on ([`ConfigBuilder::sockets`](batch_core::ConfigBuilder::sockets)),
//! `with_batch` also serves `GET /socket` (the path
//! [`BatchEndpoint::is_socket_path`] matches) with axum's own `WebSocketUpgrade`.
//! The upgrade is admitted by [`BatchEndpoint::admit_socket`] first: a refused
//! origin is 403, a full server 503, and a plain `GET` of the socket path that a
//! layer of the router refuses (401 from an auth layer, say) refuses the upgrade
//! with that same answer. Every socket message then runs through the router exactly
//! as a batch op does, with the upgrade request's headers and extensions.
//!
//! Every direct `POST`, `PATCH`, `PUT` and `DELETE` the router answers 2xx is
//! published to the sockets subscribed to it, as are the mutations of batch ops and
//! of socket messages. A request for the socket path that is not an upgrade is
//! answered 426.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use batch_core::{Config, SocketConfig};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = Router::new().route("/items/{id}", get(|| async { "an item" }));
//! let config = Config::builder().sockets(SocketConfig::default()).build()?;
//! let app = batch_axum::with_batch(app, config);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! [`Config::is_batch_path`]: batch_core::Config::is_batch_path

// The README's example is compiled (and run, unless marked `no_run`) with the doc
// tests, so the page crates.io shows cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod socket;

use std::convert::Infallible;

use axum::Router;
use axum::extract::{MatchedPath, NestedPath, OriginalUri, Request};
use axum::response::IntoResponse;
use batch_core::{BatchEndpoint, BatchLayer};
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};

use crate::socket::Sockets;

/// Serves the batch endpoint (`POST` at [`Config::path`], `/batch` by default) in
/// front of `router`, and with sockets on the socket endpoint too; every op and
/// every socket message is dispatched through `router` as it was before the call.
///
/// `endpoint` is a [`Config`] or a [`BatchEndpoint`] (to share its cap on ops in
/// flight and its hub with other servers, or to choose the hub).
///
/// [`Config`]: batch_core::Config
/// [`Config::path`]: batch_core::Config::path
pub fn with_batch(router: Router, endpoint: impl Into<BatchEndpoint>) -> Router {
    let endpoint = endpoint.into();
    let routes = ServiceBuilder::new()
        .map_request(forget_routing::<batch_core::RequestBody<axum::body::Body>>)
        .service(router.clone());
    let batch = BatchLayer::from_endpoint(endpoint.clone()).layer(routes);
    if endpoint.config().sockets().is_none() {
        return Router::new().fallback_service(batch);
    }
    let sockets = Sockets::new(endpoint.clone(), router);
    // One rule picks the socket path, the endpoint's; the batch layer sees every
    // other request, and would serve sockets over plain hyper if it saw this one.
    // A service, not a handler: axum turns a handler fallback into a service again
    // for every request when the router is served without `into_make_service`, and
    // a layer put around the router (Socket.IO's, which keeps its sessions in the
    // service it makes) would then be made anew each time.
    let answer = service_fn(move |request: Request| {
        let (endpoint, sockets, batch) = (endpoint.clone(), sockets.clone(), batch.clone());
        async move {
            let response = if endpoint.is_socket_path(request.uri().path()) {
                sockets.answer(request).await
            } else {
                batch.oneshot(request).await.into_response()
            };
            Ok::<_, Infallible>(response)
        }
    });
    Router::new().fallback_service(answer)
}

/// Drops the routing bookkeeping of the router the request passed before: left in
/// place on an op, it would describe the batch request (`/batch`), and the router
/// sets its own on every request anyway.
fn forget_routing<B>(mut request: Request<B>) -> Request<B> {
    let extensions = request.extensions_mut();
    extensions.remove::<MatchedPath>();
    extensions.remove::<OriginalUri>();
    extensions.remove::<NestedPath>();
    request
}
