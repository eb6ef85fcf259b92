//! HTTP request batching for [actix-web] 4: one endpoint that runs many operations
//! through your `App`, in-process, with its routes, scopes, `web::Data`, `wrap`
//! middleware and extractors.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use batch_core::{BatchEndpoint, Config};
//!
//! # #[actix_web::main] async fn main() -> std::io::Result<()> {
//! // Created once, outside the closure: every worker shares its limits.
//! let batch = BatchEndpoint::new(Config::default());
//! HttpServer::new(move || {
//!     let app = App::new().route("/items/{id}", web::get().to(|| async { "an item" }));
//!     batch_actix::with_batch(app, batch.clone())
//! })
//! // Stop a batch when its client leaves (see "Limits").
//! .h1_allow_half_closed(false)
//! .bind("127.0.0.1:8080")?
//! .run()
//! .await
//! # }
//! ```
//!
//! # How ops run
//!
//! [`with_batch`] adds the batch endpoint to the App as an ordinary resource, for
//! the paths [`Config::is_batch_path`](batch_core::Config::is_batch_path) names
//! ([`Config::path`](batch_core::Config::path), `/batch` by default, in any case,
//! with or without a trailing slash or percent-encoded letters), and wraps the App's request-level factory. On each worker the wrapper keeps the App's service and
//! gives the batch route a handle on it; each op is then built as a fresh
//! `actix_http::Request` and sent to that same service, exactly as the HTTP
//! dispatcher sends a request from the wire. No loopback connection, no test
//! request, no second App: an op sees the worker's real `app_data`, resource map,
//! `AppConfig`, peer address and `Host`.
//!
//! Ops of one batch run concurrently on the worker that received the batch, up to
//! the endpoint's concurrency limit. An op that panics is answered with 500 and the
//! worker keeps serving.
//!
//! The outer body is read by [`BatchEndpoint::handle`], so the endpoint's
//! `max_body` applies (413 over it, chunked or not), not actix's 256 KiB
//! `PayloadConfig` default. Each op's response body is read up to `max_response_body`;
//! a larger one answers that op with 502.
//!
//! Every op is routed by the App as a direct request is, and the batch request
//! itself is tried against every resource registered before the batch route, which
//! `with_batch` adds last. With actix-web's default features off, keep its
//! `unicode` feature on: without it, actix-router matches dynamic paths
//! (`/items/{id}`) with `regex-lite`'s slower engine, which took a third of each
//! request's time in this workspace's fixture app.
//!
//! # Limits
//!
//! - **App middleware runs on the batch and on every op.** `App::wrap` middleware
//!   runs once on the outer batch request (it is an ordinary route) and again on
//!   every op: a `Logger` logs one line per op plus one for the batch, a request
//!   counter counts each. Authentication therefore runs per op, from the inherited
//!   `authorization` and `cookie` headers ([`HeaderPolicy`](batch_core::HeaderPolicy)).
//!   Nothing in the App runs only once per batch by itself: middleware meant for the
//!   batch request alone can skip requests that carry [`BatchOp`], and middleware
//!   meant for ops alone can skip the batch path. Middleware of a scope or resource
//!   runs only for the ops routed there. What happens before the App (the
//!   `HttpServer`'s TLS, `on_connect`, connection limits) happens once, for the
//!   batch's connection.
//! - **Extensions do not propagate.** actix's request `Extensions` can be neither
//!   cloned nor iterated, so whatever middleware inserted into the outer request
//!   (`ReqData<CurrentUser>`, for example) is not on the ops; ops start with empty
//!   extensions, except for [`BatchOp`], which handlers can read
//!   to tell batched calls from direct ones.
//! - **No connection data.** Data set by `HttpServer::on_connect` (`conn_data`) has
//!   no public setter on a request, so ops do not see it; TLS peer certificates read
//!   that way are missing. The peer address is copied.
//! - **Ops are HTTP/1.1.** Whatever the outer request's version, ops carry HTTP/1.1
//!   and the caller's host (an HTTP/2 `:authority` becomes their `host` header).
//! - **Per worker.** Ops run on the worker thread that received the batch. State
//!   that should be shared across workers belongs in `web::Data` created outside the
//!   `HttpServer::new` closure, as for any actix app; create the [`BatchEndpoint`]
//!   there too, or each worker gets its own cap on operations in flight.
//! - **A client that leaves stops its batch only with
//!   `HttpServer::h1_allow_half_closed(false)`.** By default actix keeps serving a
//!   request after the client closed its half of the connection, so the batch runs
//!   to its end; with the setting, actix drops the request and the batch with it: ops
//!   not yet started never start. `with_batch` wraps the `App`, not the server, so
//!   it cannot set this for you.
//! - **Nagle's algorithm is on.** actix-web does not set `TCP_NODELAY`, so a
//!   write that follows another one not yet acknowledged waits for the client's
//!   delayed ACK (about 40 ms on Linux): a socket's replay of 1,000 events took
//!   over 40 ms instead of well under one. Give [`no_delay`] to
//!   `HttpServer::on_connect`.
//! - **The batch path is matched before the App.** The wrapper recognises the batch
//!   request by its path, by the same rule as the route. Middleware inside the App
//!   that rewrites some other path *to* the batch path makes the route answer 500.
//!
//!
//! # Sockets
//!
//! With sockets on ([`ConfigBuilder::sockets`](batch_core::ConfigBuilder::sockets)),
//! `with_batch` also adds the socket endpoint to the App, as a resource for the
//! paths [`BatchEndpoint::is_socket_path`] names (`/socket` by default), served with
//! [`actix-ws`](https://docs.rs/actix-ws). An upgrade is admitted by
//! [`BatchEndpoint::admit_socket`] first: a refused origin is 403, a full server 503,
//! and a plain `GET` of the socket path is sent through the App, so `wrap`
//! middleware that refuses it (401 from an auth middleware, say) refuses the upgrade
//! with that same answer. That `GET` is an op, and reaches the socket route itself,
//! which answers every op "not found": no op opens a socket. The socket is then
//! served on the worker that accepted it, each message run through the App as an op
//! is. A request for the socket path that is not an upgrade is answered 426.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use batch_core::{BatchEndpoint, Config, SocketConfig};
//!
//! # #[actix_web::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder().sockets(SocketConfig::default()).build()?;
//! // One endpoint for every worker: one hub, one cap on open sockets.
//! let batch = BatchEndpoint::new(config);
//! HttpServer::new(move || {
//!     let app = App::new().route("/items/{id}", web::get().to(|| async { "an item" }));
//!     batch_actix::with_batch(app, batch.clone())
//! })
//! // A socket's messages are small writes: send each at once.
//! .on_connect(batch_actix::no_delay)
//! .bind("127.0.0.1:8080")?
//! .run()
//! .await?;
//! # Ok(()) }
//! ```
//!
//! Every direct `POST`, `PATCH`, `PUT` and `DELETE` the App answers 2xx is published
//! to the sockets subscribed to it: [`BatchAppService`] watches the payload as the
//! App reads it and the answer's body as it is written ([`ResponseBody`]). Ops do
//! not pass there (the engine publishes their changes), so no change is published
//! twice.
//!
//! [actix-web]: https://actix.rs

// The README's example is compiled (and run, unless marked `no_run`) with the doc
// tests, so the page crates.io shows cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod connection;
mod convert;
mod events;
mod executor;
mod factory;
mod socket;
mod watch;

use actix_service::IntoServiceFactory;
use actix_web::body::BodyStream;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, Error, HttpMessage, HttpRequest, HttpResponse, guard, web};
use batch_core::{BatchEndpoint, BatchOp, Problem};
use futures::TryStreamExt;
use http::StatusCode;
use http_body_util::{BodyDataStream, BodyExt, StreamBody};

pub use crate::connection::no_delay;
use crate::executor::{ActixExecutor, Dispatcher};
pub use crate::factory::{BatchApp, BatchAppService};
pub use crate::watch::{ResponseBody, WatchedBody};

/// Adds the batch endpoint (`POST` at the endpoint's path, `/batch` by default) to
/// `app` and returns the factory to serve instead of the `App`.
///
/// Call it inside the `HttpServer::new` closure, last, with a clone of one
/// [`BatchEndpoint`] created outside the closure. Every op runs through `app` as
/// configured: all its routes, scopes, data and `wrap` middleware.
///
/// actix matches resources in the order they were registered, so a route the App
/// already has at the batch path wins and the batch endpoint is unreachable: pick
/// another path with [`ConfigBuilder::path`](batch_core::ConfigBuilder::path).
pub fn with_batch<T, B>(
    app: App<T>,
    endpoint: BatchEndpoint,
) -> BatchApp<
    impl ServiceFactory<
        actix_http::Request,
        Config = actix_web::dev::AppConfig,
        Response = ServiceResponse<B>,
        Error = Error,
        InitError = (),
    >,
>
where
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let handler = endpoint.clone();
    let route = web::route().to(move |request: HttpRequest, payload: web::Payload| {
        let endpoint = handler.clone();
        async move { answer(&endpoint, request, payload).await }
    });
    // Every path is a candidate; the guard keeps those the endpoint serves, by the
    // same rule the wrapper and the engine use.
    let matcher = endpoint.clone();
    let resource = web::resource("/{batch_path:.*}")
        .guard(guard::fn_guard(move |ctx| {
            matcher.config().is_batch_path(ctx.head().uri.path())
        }))
        .route(route);
    let mut app = app.service(resource);
    if endpoint.config().sockets().is_some() {
        let handler = endpoint.clone();
        let route = web::route().to(move |request: HttpRequest, payload: web::Payload| {
            let endpoint = handler.clone();
            async move { socket::answer(&endpoint, request, payload).await }
        });
        let matcher = endpoint.clone();
        let resource = web::resource("/{socket_path:.*}")
            .guard(guard::fn_guard(move |ctx| {
                matcher.is_socket_path(ctx.head().uri.path())
            }))
            .route(route);
        app = app.service(resource);
        let handler = endpoint.clone();
        let route = web::get().to(move |request: HttpRequest| {
            let endpoint = handler.clone();
            async move { events::answer(&endpoint, request).await }
        });
        let matcher = endpoint.clone();
        let resource = web::resource("/{events_path:.*}")
            .guard(guard::fn_guard(move |ctx| {
                matcher.is_events_path(ctx.head().uri.path())
            }))
            .route(route);
        app = app.service(resource);
    }
    BatchApp::new(app.into_factory(), endpoint)
}

async fn answer(
    endpoint: &BatchEndpoint,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let dispatcher = request.extensions().get::<Dispatcher>().cloned();
    let parts = match convert::outer_parts(&request) {
        Ok(parts) => parts,
        Err(err) => return unconvertible(&err),
    };
    // A nested batch carries BatchOp and is refused by the engine; without either,
    // middleware inside the App rewrote another path to the batch path.
    if dispatcher.is_none() && parts.extensions.get::<BatchOp>().is_none() {
        return unrecognised_path("batch");
    }
    let body = StreamBody::new(payload.map_ok(http_body::Frame::data));
    let executor = ActixExecutor::new(dispatcher, request.peer_addr());
    let response = endpoint
        .respond(executor, http::Request::from_parts(parts, body))
        .await;
    // A streamed answer goes out as its batch writes it (chunked); any other is
    // one chunk, sent with its length.
    if response.body().is_streamed() {
        let response = response.map(|body| BodyStream::new(BodyDataStream::new(body)));
        return convert::to_actix_response(response)
            .unwrap_or_else(|err| HttpResponse::InternalServerError().body(err.to_string()));
    }
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    actix_response(http::Response::from_parts(parts, bytes))
}

/// The executor the socket and events routes run their `GET`s with (through the
/// App, as the wrapper's dispatcher sends them) and the outer request's parts, or
/// the answer when there are none.
fn outer_executor(
    request: &HttpRequest,
    route: &str,
) -> Result<(ActixExecutor, http::request::Parts), HttpResponse> {
    let Some(dispatcher) = request.extensions().get::<Dispatcher>().cloned() else {
        return Err(unrecognised_path(route));
    };
    let parts = convert::outer_parts(request).map_err(|err| unconvertible(&err))?;
    Ok((
        ActixExecutor::new(Some(dispatcher), request.peer_addr()),
        parts,
    ))
}

/// 400 for an outer request that has no `http` equivalent.
fn unconvertible(err: &convert::ConvertError) -> HttpResponse {
    actix_response(Problem::new(StatusCode::BAD_REQUEST, err.to_string()).into_response())
}

/// 500 for the batch or socket route reached without the wrapper's dispatcher:
/// middleware inside the App rewrote another path to the endpoint's.
fn unrecognised_path(route: &str) -> HttpResponse {
    let problem = Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "the {route} route was reached at a path the batch_actix wrapper does not \
             recognise; send requests to the configured {route} path"
        ),
    );
    actix_response(problem.into_response())
}

fn actix_response(response: http::Response<bytes::Bytes>) -> HttpResponse {
    convert::to_actix_response(response)
        .unwrap_or_else(|err| HttpResponse::InternalServerError().body(err.to_string()))
}
