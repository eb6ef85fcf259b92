//! HTTP request batching for [warp]: one filter that runs many operations through
//! your filter tree, in-process, with every filter the tree has.
//!
//! ```no_run
//! use batch_core::Config;
//! use warp::Filter;
//!
//! # #[tokio::main] async fn main() {
//! let item = warp::path!("items" / u64).map(|id| format!("item {id}"));
//! let health = warp::path!("health").map(|| "ok");
//! // Ops run through `routes`, so apply recover, logging and auth filters first.
//! let routes = item.or(health);
//! let app = batch_warp::with_batch(routes, Config::default());
//! warp::serve(app).run(([127, 0, 0, 1], 3000)).await;
//! # }
//! ```
//!
//! # How ops run
//!
//! [`with_batch`] answers requests for the batch path ([`Config::path`](batch_core::Config::path), `/batch` by
//! default; see [`Config::is_batch_path`](batch_core::Config::is_batch_path)) and passes every other request to your
//! routes. Each op is sent through
//! `warp::service(routes)`, so it passes every filter of the tree given to
//! `with_batch` (`recover`, `with(warp::log(..))`, auth filters), exactly like a
//! direct request; filters added to the returned filter wrap only the outer request.
//!
//! warp keeps the request being filtered in a scoped thread-local and, in debug
//! builds, panics when one route is dispatched while another is being polled. So the
//! batch runs on a task of its own, one `tokio::spawn` per batch, outside the outer
//! route: the filter must be served on a tokio runtime, as `warp::serve` does. When
//! the outer request goes away (the client disconnects, the server shuts down), the
//! task is aborted: running ops are dropped and no further op starts.
//!
//! The batch body is read as a stream, with or without `content-length`; a body
//! larger than [`Config::max_body`](batch_core::Config::max_body) is refused with 413 before more than the limit
//! is buffered.
//!
//! The batch route rejects requests for other paths as "not found", which warp
//! ranks below any rejection of your routes, so it never hides theirs. The batch
//! path itself belongs to the endpoint: another method there is answered 405 with
//! `allow: POST`, as on every adapter.
//!
//! # What ops can and cannot see
//!
//! - **Headers:** an op starts with the outer request's headers, as
//!   [`batch_core::HeaderPolicy`] decides (by default `authorization`, `cookie` and
//!   proxy headers such as `x-forwarded-for` are inherited), then its own.
//! - **Batch marker:** every op carries a [`batch_core::BatchOp`] extension, so
//!   `warp::ext::optional::<BatchOp>()` tells an op from a direct request.
//! - **Remote address:** `warp::addr::remote()` is `None` in an op, because warp
//!   keeps the connection's address private to its server. Use [`remote`] instead:
//!   the connection's address for a direct request, the batch request's for an op.
//! - **Extensions:** warp filters cannot read the outer request's extension map as a
//!   whole, so extensions inserted outside warp (by a tower layer around
//!   `warp::service`) do not reach ops. Pass such data as a header: ops inherit it,
//!   and [`HeaderPolicy::forbid`](batch_core::HeaderPolicy::forbid) stops an op from
//!   setting it to something else.
//!
//! The routes given to `with_batch` have no batch route, and ops aimed at the batch
//! path are refused with 422 before anything runs, so batches cannot nest.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use batch_core::{BatchEndpoint, BatchOp, Problem, ServiceExecutor};
use bytes::{Buf, Bytes};
use futures::{Stream, StreamExt};
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::StreamBody;
use tokio::task::{JoinError, JoinHandle};
use warp::filters::path::FullPath;
use warp::{Filter, Rejection, Reply};

/// Adds the batch endpoint (`POST` at [`Config::path`](batch_core::Config::path), `/batch` by default) in
/// front of `routes`; every op is dispatched through `routes`.
///
/// `routes` may reject (`Error = Rejection`) or recover every rejection
/// (`Error = Infallible`); put `recover` inside `routes` so ops get your error
/// bodies too. The returned filter is `batch.or(routes)`, and must run on a tokio
/// runtime (see the [crate docs](crate#how-ops-run)).
pub fn with_batch<F, R>(
    routes: F,
    endpoint: impl Into<BatchEndpoint>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone + Send + Sync + 'static
where
    F: Filter<Extract = (R,)> + Clone + Send + Sync + 'static,
    F::Error: Into<Rejection>,
    R: Reply,
{
    // Boxing gives one concrete filter type (and rejection type) whatever the
    // user's tree is, which `warp::service` and `or` can both take.
    let routes = routes.map(|reply: R| reply.into_response()).boxed();
    let endpoint = endpoint.into();
    let executor = ServiceExecutor::new(warp::service(routes.clone()));
    let batch = batch_path(endpoint.clone())
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<BatchOp>())
        .and(warp::addr::remote())
        .and(warp::body::stream())
        .then(move |method, path: FullPath, headers, op, remote, body| {
            let (endpoint, executor) = (endpoint.clone(), executor.clone());
            let mut request = Request::new(into_body(body));
            *request.method_mut() = method;
            if let Ok(uri) = path.as_str().parse() {
                *request.uri_mut() = uri;
            }
            *request.headers_mut() = headers;
            let extensions = request.extensions_mut();
            if let Some(op) = op {
                extensions.insert::<BatchOp>(op);
            }
            if let Some(addr) = remote {
                extensions.insert(BatchRemoteAddr(addr));
            }
            // This future is polled inside the outer route's scope; ops
            // dispatched here would nest routes, which warp forbids.
            let batch = AbortOnDrop(tokio::spawn(async move {
                endpoint.handle(&executor, request).await
            }));
            async move {
                match batch.await {
                    Ok(response) => response.into_response(),
                    Err(err) => batch_failed(&err).into_response(),
                }
            }
        });
    batch.or(routes).unify()
}

/// The remote address of the request: the connection's for a direct request, the
/// batch request's for an op of a batch.
///
/// Use it where `warp::addr::remote()` would be used; that one is `None` in every op.
///
/// ```
/// use std::net::SocketAddr;
/// use warp::Filter;
///
/// let whoami = warp::path!("ip")
///     .and(batch_warp::remote())
///     .map(|addr: Option<SocketAddr>| format!("{addr:?}"));
/// ```
pub fn remote()
-> impl Filter<Extract = (Option<SocketAddr>,), Error = std::convert::Infallible> + Copy {
    warp::addr::remote()
        .and(warp::ext::optional::<BatchRemoteAddr>())
        .map(
            |direct: Option<SocketAddr>, batch: Option<BatchRemoteAddr>| {
                direct.or(batch.map(|BatchRemoteAddr(addr)| addr))
            },
        )
}

/// The batch request's remote address, carried to its ops for [`remote`].
#[derive(Debug, Clone, Copy)]
struct BatchRemoteAddr(SocketAddr);

/// Matches the batch path ([`Config::is_batch_path`](batch_core::Config::is_batch_path)); anything else is "not
/// found", the rejection warp ranks lowest, so the user's routes' own rejections win.
fn batch_path(endpoint: BatchEndpoint) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::path::full()
        .and_then(move |full: FullPath| {
            let matches = endpoint.config().is_batch_path(full.as_str());
            async move {
                if matches {
                    Ok(())
                } else {
                    Err(warp::reject::not_found())
                }
            }
        })
        .untuple_one()
}

fn into_body<S, D>(stream: S) -> StreamBody<impl Stream<Item = Result<Frame<Bytes>, warp::Error>>>
where
    S: Stream<Item = Result<D, warp::Error>>,
    D: Buf,
{
    StreamBody::new(
        stream.map(|chunk| chunk.map(|mut data| Frame::data(data.copy_to_bytes(data.remaining())))),
    )
}

/// The batch's task; aborted when the outer request's future is dropped, so no op
/// outlives the client that asked for it.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// 500 for a batch whose task ended without an answer: the engine isolates op
/// panics, so this is a panic of its own or a runtime shutting down.
fn batch_failed(err: &JoinError) -> Response<Bytes> {
    let detail = if err.is_panic() {
        "the batch failed while running"
    } else {
        "the batch was cancelled"
    };
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, detail).into_response()
}
