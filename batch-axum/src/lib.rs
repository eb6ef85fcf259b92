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
//! // Mount POST /batch last, after `with_state` and the layers ops must pass.
//! let app = batch_axum::with_batch(app, Config::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! # How ops run
//!
//! Each op is sent to a clone of the router given to [`with_batch`] (`oneshot`), so
//! it passes every layer applied *before* `with_batch`, exactly like a direct
//! request. Layers applied *after* `with_batch` wrap only the outer batch request:
//! put authentication that should run once there, and have it insert an extension.
//!
//! Ops inherit the outer request's headers (see [`batch_core::HeaderPolicy`]) and a
//! clone of its extensions, so `Extension<CurrentUser>` set by an outer layer and
//! `ConnectInfo` reach every op. axum's own routing bookkeeping (`MatchedPath`,
//! `OriginalUri`, `NestedPath`) is removed first, so an op's extractors see the op's
//! route, not `/batch`.
//!
//! The router must be a `Router<()>`: call `with_state` before `with_batch`. The
//! captured router has no batch route, and ops aimed at the batch path are refused
//! with 422 before anything runs, so batches cannot nest.

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, NestedPath, OriginalUri, Request};
use axum::response::Response;
use axum::routing::post;
use batch_core::{BatchEndpoint, Config, ServiceExecutor};

/// Adds the batch endpoint (`POST` at [`Config::path`], `/batch` by default) to
/// `router`; every op is dispatched through `router` as it was before the call.
///
/// # Panics
///
/// When `router` already has a route at the batch path, as `Router::route` does.
pub fn with_batch(router: Router, config: Config) -> Router {
    let endpoint = BatchEndpoint::new(config);
    let executor = ServiceExecutor::new(router.clone(), endpoint.config().max_response_body());
    let path = endpoint.config().path().to_owned();
    router.route(
        &path,
        post(move |request: Request| {
            let (endpoint, executor) = (endpoint.clone(), executor.clone());
            async move { answer(&endpoint, &executor, request).await }
        }),
    )
}

async fn answer(
    endpoint: &BatchEndpoint,
    executor: &ServiceExecutor<Router>,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    // axum's routing bookkeeping describes the outer request; left in place it would
    // be prefixed onto each op's own (`/batch/items/{id}`).
    parts.extensions.remove::<MatchedPath>();
    parts.extensions.remove::<OriginalUri>();
    parts.extensions.remove::<NestedPath>();
    let response = match endpoint.read_body(&parts.headers, body).await {
        Ok(bytes) => {
            endpoint
                .handle(executor, Request::from_parts(parts, bytes))
                .await
        }
        Err(problem) => problem.into_response(),
    };
    response.map(Body::from)
}
