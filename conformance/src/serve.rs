//! Small hyper servers on threads of their own: one for any tower service (the axum
//! fixture), one that answers the batch path with [`BatchEndpoint`] over any
//! [`Executor`] (to check an executor without a framework).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::Duration;

use batch_core::{BatchEndpoint, BoxError, Config, ExecuteError, Executor, collect_body};
use bytes::Bytes;
use futures::FutureExt as _;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::fixture::Server;

/// How long a stopping server waits for requests in progress.
const GRACE: Duration = Duration::from_secs(5);

/// Serves `service` on `addr` with HTTP/1.1 and HTTP/2 prior knowledge (h2c) on the
/// same port, on a multi-thread tokio runtime of its own, until the returned
/// [`Server`] is dropped.
///
/// `addr` is bound before this returns, so a taken port is an error here and
/// `127.0.0.1:0` gives the real port in [`Server::addr`].
pub fn serve_service<S, B>(addr: SocketAddr, service: S) -> std::io::Result<Server>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (listener, addr) = bind(&runtime, addr)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("serve-{addr}"))
        .spawn(move || {
            runtime.block_on(async move {
                let graceful = GracefulShutdown::new();
                let builder = auto::Builder::new(TokioExecutor::new());
                accept_until(listener, stopped, |stream| {
                    let service = TowerToHyperService::new(service.clone());
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    tokio::spawn(graceful.watch(connection));
                })
                .await;
                let _ = tokio::time::timeout(GRACE, graceful.shutdown()).await;
            });
        })?;
    Ok(Server::new(addr, stop_with(stop), thread))
}

/// Serves a batch endpoint over `executor` on `127.0.0.1:0` until the returned
/// [`Server`] is dropped: `POST` at [`Config::path`] is answered by
/// [`BatchEndpoint::handle`], every other request is dispatched to `executor`
/// directly (a panic there answers 500).
///
/// The server runs on a current-thread runtime, so executors whose futures are not
/// `Send` (actix-style) work as well as tower services.
///
/// ```
/// use std::sync::Arc;
/// use batch_core::{Config, ServiceExecutor};
/// use conformance::fixture::{self, Store};
///
/// let config = Config::default();
/// let app = fixture::axum::app(Arc::new(Store::default()));
/// let executor = ServiceExecutor::new(app, config.max_response_body());
/// let server = conformance::serve_executor(executor, config)?;
/// let report = conformance::run_only(&server.url(), "tower", "ops.")?;
/// assert_eq!(report.failed(), 0, "{report}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn serve_executor<E>(executor: E, config: Config) -> std::io::Result<Server>
where
    E: Executor + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (listener, addr) = bind(&runtime, SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("serve-executor-{addr}"))
        .spawn(move || {
            let app = Rc::new(ExecutorApp {
                endpoint: BatchEndpoint::new(config),
                executor,
            });
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async move {
                let graceful = GracefulShutdown::new();
                let builder = auto::Builder::new(LocalExecutor);
                accept_until(listener, stopped, |stream| {
                    let app = app.clone();
                    let service = hyper::service::service_fn(move |request| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(app.answer(request).await) }
                    });
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    tokio::task::spawn_local(graceful.watch(connection));
                })
                .await;
                let _ = tokio::time::timeout(GRACE, graceful.shutdown()).await;
            });
        })?;
    Ok(Server::new(addr, stop_with(stop), thread))
}

/// Binds synchronously, so the caller sees bind errors and the real port.
fn bind(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let _context = runtime.enter();
    Ok((TcpListener::from_std(listener)?, addr))
}

fn stop_with(stop: oneshot::Sender<()>) -> Box<dyn FnOnce() + Send> {
    Box::new(move || {
        // The server may have stopped on its own already; nothing is left to tell.
        let _ = stop.send(());
    })
}

/// Hands every accepted connection to `serve` until `stopped` fires.
async fn accept_until(
    listener: TcpListener,
    mut stopped: oneshot::Receiver<()>,
    mut serve: impl FnMut(tokio::net::TcpStream),
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    // Small responses must not wait for the peer's delayed ACK
                    // (Nagle): HTTP/2 frames a response in several writes.
                    let _ = stream.set_nodelay(true);
                    serve(stream)
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            _ = &mut stopped => return,
        }
    }
}

/// Runs hyper's HTTP/2 tasks on the current thread's `LocalSet`, so connections
/// need not be `Send`.
#[derive(Clone, Copy)]
struct LocalExecutor;

impl<F> hyper::rt::Executor<F> for LocalExecutor
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        tokio::task::spawn_local(future);
    }
}

struct ExecutorApp<E> {
    endpoint: BatchEndpoint,
    executor: E,
}

impl<E: Executor> ExecutorApp<E> {
    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let config = self.endpoint.config();
        if parts.method == Method::POST && parts.uri.path() == config.path() {
            let response = match self.endpoint.read_body(&parts.headers, body).await {
                Ok(bytes) => {
                    self.endpoint
                        .handle(&self.executor, Request::from_parts(parts, bytes))
                        .await
                }
                Err(problem) => problem.into_response(),
            };
            return response.map(Full::new);
        }
        // Direct requests share the batch body limit: the fixture needs no more.
        let body = match collect_body(body, config.max_body()).await {
            Ok(body) => body,
            Err(ExecuteError::ResponseTooLarge { .. }) => {
                return status_only(StatusCode::PAYLOAD_TOO_LARGE);
            }
            Err(_) => return status_only(StatusCode::BAD_REQUEST),
        };
        let call = self.executor.execute(Request::from_parts(parts, body));
        match AssertUnwindSafe(call).catch_unwind().await {
            Ok(Ok(response)) => response.map(Full::new),
            Ok(Err(ExecuteError::ResponseTooLarge { .. })) => status_only(StatusCode::BAD_GATEWAY),
            Ok(Err(_)) | Err(_) => status_only(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
