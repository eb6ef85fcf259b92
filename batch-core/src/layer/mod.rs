//! A tower [`Layer`] that serves the batch endpoint (and, with sockets on, the
//! socket endpoint) in front of any service and dispatches every op through that
//! same service: hyper, tonic, axum or any tower stack, with no framework adapter.

mod body;
mod ops;
mod websocket;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use tower::{Layer, Service};

pub use body::{RequestBody, ResponseBody};
use ops::Ops;

use crate::config::Config;
use crate::endpoint::BatchEndpoint;
use crate::executor::BoxError;

/// Serves the batch endpoint at [`Config::path`] in front of the service it wraps,
/// and runs every op through that service.
///
/// Requests for the batch path ([`Config::is_batch_path`]) are answered by
/// [`BatchEndpoint::handle`]; with sockets on, WebSocket upgrades at the socket path
/// ([`BatchEndpoint::is_socket_path`]) are served by the endpoint too, over hyper's
/// upgrade (the server must serve connections with upgrades). Every other request
/// goes to the wrapped service unchanged but for its body type: the service sees a
/// [`RequestBody`], the request's own body as it streams or an op's. Services
/// generic over their body (an axum `Router`, a tonic server, most tower stacks)
/// take it as they are. With sockets on, a direct `POST`, `PATCH`, `PUT` or `DELETE`
/// is watched as it passes, and its change published when its answer ends.
///
/// Served on hyper directly:
///
/// ```
/// use std::convert::Infallible;
/// use batch_core::{BatchLayer, Config, RequestBody};
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::{BodyExt, Full};
/// use hyper::body::Incoming;
/// use hyper_util::rt::TokioIo;
/// use hyper_util::service::TowerToHyperService;
/// use tower::Layer;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// // The application: one route.
/// let app = tower::service_fn(|req: Request<RequestBody<Incoming>>| async move {
///     let status = if req.uri().path() == "/health" { 200 } else { 404 };
///     let response = Response::builder()
///         .status(status)
///         .header("content-type", "application/json")
///         .body(Full::new(Bytes::from_static(br#"{"ok":true}"#)))?;
///     Ok::<_, http::Error>(response)
/// });
/// let service = BatchLayer::new(Config::default()).layer(app);
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let addr = listener.local_addr()?;
/// tokio::spawn(async move {
///     while let Ok((stream, _)) = listener.accept().await {
///         let service = TowerToHyperService::new(service.clone());
///         let connection = hyper::server::conn::http1::Builder::new()
///             .serve_connection(TokioIo::new(stream), service);
///         tokio::spawn(connection);
///     }
/// });
///
/// // A client sends one batch of two ops.
/// let stream = tokio::net::TcpStream::connect(addr).await?;
/// let (mut client, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
/// tokio::spawn(connection);
/// let batch = Request::post(format!("http://{addr}/batch"))
///     .header("content-type", "application/json")
///     .body(Full::new(Bytes::from_static(br#"{"ops": [{"url": "/health"}, {"url": "/nope"}]}"#)))?;
/// let response = client.send_request(batch).await?;
/// let body = response.into_body().collect().await?.to_bytes();
/// let body: serde_json::Value = serde_json::from_slice(&body)?;
/// assert_eq!(body["results"][0]["body"], serde_json::json!({"ok": true}));
/// assert_eq!(body["results"][1]["status"], 404);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BatchLayer {
    endpoint: BatchEndpoint,
}

impl BatchLayer {
    /// A layer serving a batch endpoint with `config`.
    pub fn new(config: Config) -> Self {
        Self::from_endpoint(BatchEndpoint::new(config))
    }

    /// A layer serving `endpoint`: services it wraps share its cap on operations in
    /// flight, its sockets and its hub.
    pub fn from_endpoint(endpoint: BatchEndpoint) -> Self {
        Self { endpoint }
    }
}

impl<S> Layer<S> for BatchLayer {
    type Service = BatchService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BatchService {
            inner,
            endpoint: self.endpoint.clone(),
        }
    }
}

/// The service [`BatchLayer`] builds: the batch endpoint in front of `S`.
#[derive(Debug, Clone)]
pub struct BatchService<S> {
    inner: S,
    endpoint: BatchEndpoint,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BatchService<S>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ReqBody: Body<Data = Bytes> + Unpin + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Unpin + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready is the one this request gets; its place
        // is taken by a fresh clone, as tower services that clone themselves do.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let path = request.uri().path();
        let endpoint = self.endpoint.clone();
        if endpoint.config().is_batch_path(path) || endpoint.is_socket_path(path) {
            // Ops go to clones; the ready service would only hold what it reserved.
            drop(inner);
            let ops = Ops::new(self.inner.clone());
            return Box::pin(async move {
                if endpoint.config().is_batch_path(request.uri().path()) {
                    let response = endpoint.respond(ops, request).await;
                    return Ok(response.map(ResponseBody::endpoint));
                }
                let response = websocket::answer(&endpoint, ops, request).await;
                Ok(response.map(|body| ResponseBody::endpoint(Full::new(body))))
            });
        }
        if request.method() == Method::GET && endpoint.is_events_path(path) {
            drop(inner);
            let ops = Ops::new(self.inner.clone());
            let (parts, _body) = request.into_parts();
            return Box::pin(async move {
                Ok(match endpoint.serve_events(ops, &parts).await {
                    Ok(response) => response.map(ResponseBody::events),
                    Err(refusal) => refusal.map(|body| ResponseBody::endpoint(Full::new(body))),
                })
            });
        }
        let (parts, body) = request.into_parts();
        let Some(watch) = endpoint.watch(&parts).map(Arc::new) else {
            let request = Request::from_parts(parts, RequestBody::direct(body));
            return Box::pin(async move {
                let response = inner.call(request).await?;
                Ok(response.map(ResponseBody::direct))
            });
        };
        let request = Request::from_parts(parts, RequestBody::watched(body, Arc::clone(&watch)));
        Box::pin(async move {
            let (parts, body) = inner.call(request).await?.into_parts();
            watch.response_head(parts.status, &parts.headers);
            // A server sends no body with these, and may never poll one.
            let bodiless = matches!(
                parts.status,
                StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
            );
            let body = if !watch.needs_response_body() || bodiless || body.is_end_stream() {
                watch.response_end();
                ResponseBody::direct(body)
            } else {
                ResponseBody::watched(body, watch)
            };
            Ok(Response::from_parts(parts, body))
        })
    }
}
