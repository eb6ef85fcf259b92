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
//! for the batch path ([`Config::is_batch_path`](batch_core::Config::is_batch_path)) is answered by the batch endpoint,
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

use axum::Router;
use axum::extract::{MatchedPath, NestedPath, OriginalUri, Request};
use batch_core::{BatchEndpoint, BatchLayer};
use tower::{Layer, ServiceBuilder};

/// Serves the batch endpoint (`POST` at [`Config::path`](batch_core::Config::path), `/batch` by default) in
/// front of `router`; every op is dispatched through `router` as it was before the
/// call.
pub fn with_batch(router: Router, endpoint: impl Into<BatchEndpoint>) -> Router {
    let routes = ServiceBuilder::new()
        .map_request(forget_routing::<batch_core::RequestBody<axum::body::Body>>)
        .service(router);
    Router::new().fallback_service(BatchLayer::from_endpoint(endpoint.into()).layer(routes))
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
