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
//! path itself belongs to the endpoint: `OPTIONS` there answers its limits, and
//! another method is answered 405 with `allow: POST, OPTIONS`, as on every adapter.
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
//!
//! # Sockets
//!
//! With sockets on ([`ConfigBuilder::sockets`]), `with_batch` also answers the
//! socket path ([`BatchEndpoint::is_socket_path`], `/socket` by default) with warp's
//! own `ws` filter. An upgrade is admitted by [`BatchEndpoint::admit_socket`] first:
//! a refused origin is 403, a full server 503, and a plain `GET` of the socket path
//! is sent through your routes, so a filter that refuses it (401 from an auth
//! filter, say) refuses the upgrade with that same answer. Each socket message then
//! runs through `warp::service(routes)` as an op does, and sees what an op sees: the
//! upgrade request's headers, and its address through [`remote`]. Any other request
//! for the socket path is answered 426.
//!
//! ```no_run
//! use batch_core::{Config, SocketConfig};
//! use warp::Filter;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let routes = warp::path!("items" / u64).map(|id| format!("item {id}"));
//! let config = Config::builder().sockets(SocketConfig::default()).build()?;
//! warp::serve(batch_warp::with_batch(routes, config))
//!     .run(([127, 0, 0, 1], 3000))
//!     .await;
//! # Ok(()) }
//! ```
//!
//! Every direct `POST`, `PATCH`, `PUT` and `DELETE` your routes answer 2xx is
//! published to the sockets subscribed to it. A warp filter cannot read a request's
//! body and still pass it on, so with sockets on `with_batch` does not hand these
//! requests to `routes` as a filter: it dispatches them through
//! `warp::service(routes)`, on a task of their own, watching the body and the answer
//! as they stream past. For these requests, and only with sockets on:
//!
//! - `warp::addr::remote()` is `None`, as in an op; [`remote`] gives the
//!   connection's address.
//! - Extensions inserted outside warp (by a tower layer around `warp::service`) do
//!   not reach them, as they do not reach ops.
//! - They carry the method, path, query and headers of the request but not its HTTP
//!   version (they are HTTP/1.1) nor an HTTP/2 `:authority` (read the `host` header).
//! - `routes` answers them whole: a rejection becomes warp's answer to it, so
//!   filters combined with the returned filter (`with_batch(..).or(more)`) never see
//!   them. Put every route, and `recover`, inside `routes`.
//!
//! `GET`, `HEAD` and every other request keep going to `routes` as a filter,
//! untouched, as does everything when sockets are off.
//!
//! [`Config::path`]: batch_core::Config::path
//! [`Config::is_batch_path`]: batch_core::Config::is_batch_path
//! [`Config::max_body`]: batch_core::Config::max_body
//! [`ConfigBuilder::sockets`]: batch_core::ConfigBuilder::sockets

// The README's example is compiled (and run, unless marked `no_run`) with the doc
// tests, so the page crates.io shows cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod batch;
mod events;
mod mutation;
mod request;
mod socket;
mod task;

use std::convert::Infallible;
use std::net::SocketAddr;

use batch_core::{BatchEndpoint, ServiceExecutor};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use tower::util::BoxCloneSyncService;
use warp::filters::path::FullPath;
use warp::{Filter, Rejection, Reply};

/// The routes given to [`with_batch`], as a service taking requests with bodies of
/// type `B`: boxed, so that the futures the endpoint spawns have a type it can name.
type Routes<B> = BoxCloneSyncService<Request<B>, warp::reply::Response, Infallible>;

/// Runs ops and socket messages through the routes.
type Ops = ServiceExecutor<Routes<Full<Bytes>>>;

/// Adds the batch endpoint (`POST` at [`Config::path`], `/batch` by default) in
/// front of `routes`, and with sockets on the socket endpoint; every op and every
/// socket message is dispatched through `routes`.
///
/// `endpoint` is a [`Config`] or a [`BatchEndpoint`] (to share its cap on ops in
/// flight and its hub with other servers, or to choose the hub). `routes` may reject
/// (`Error = Rejection`) or recover every rejection (`Error = Infallible`); put
/// `recover` inside `routes` so ops get your error bodies too. The returned filter
/// tries the socket route, the batch route and the watched mutations before `routes`
/// (with sockets off, only the batch route matches anything), and must run on a
/// tokio runtime (see the [crate docs](crate#how-ops-run)).
///
/// [`Config`]: batch_core::Config
/// [`Config::path`]: batch_core::Config::path
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
    let ops: Ops = ServiceExecutor::new(BoxCloneSyncService::new(warp::service(routes.clone())));
    let mutations = BoxCloneSyncService::new(warp::service(routes.clone()));
    socket::filter(endpoint.clone(), ops.clone())
        .or(events::filter(endpoint.clone(), ops.clone()))
        .unify()
        .or(batch::filter(endpoint.clone(), ops))
        .unify()
        .or(mutation::filter(endpoint, mutations))
        .unify()
        .or(routes)
        .unify()
}

/// The remote address of the request: the connection's for a direct request, the
/// batch request's for an op of a batch, the upgrade request's for a socket message.
///
/// Use it where `warp::addr::remote()` would be used; that one is `None` in every op,
/// in every socket message and, with sockets on, in every direct `POST`, `PATCH`,
/// `PUT` and `DELETE` (see [the crate docs](crate#sockets)).
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

/// The remote address of a request dispatched through the routes from
/// `with_batch` (an op, a socket message, a watched mutation), for [`remote`].
#[derive(Debug, Clone, Copy)]
struct BatchRemoteAddr(SocketAddr);

/// Matches requests whose method and path `matches` accepts; anything else is "not
/// found", the rejection warp ranks lowest, so the user's routes' own rejections win.
fn matching<M>(matches: M) -> impl Filter<Extract = (), Error = Rejection> + Clone
where
    M: Fn(&Method, &str) -> bool + Clone + Send + Sync + 'static,
{
    warp::method()
        .and(warp::path::full())
        .and_then(move |method: Method, full: FullPath| {
            let matched = matches(&method, full.as_str());
            async move {
                if matched {
                    Ok(())
                } else {
                    Err(warp::reject::not_found())
                }
            }
        })
        .untuple_one()
}
