//! A tower [`Layer`] that serves the batch endpoint in front of any service and
//! dispatches every op through that same service: hyper, tonic, axum or any tower
//! stack, with no framework adapter.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{Either, Full};
use tower::{Layer, Service};

use crate::config::Config;
use crate::endpoint::BatchEndpoint;
use crate::executor::{self, BoxError, ExecuteError, Executor};

/// The body of a request reaching the wrapped service: a direct request's own body,
/// or an op's, which the engine holds whole.
pub type RequestBody<B> = Either<B, Full<Bytes>>;

/// The body of a response from a [`BatchService`]: a batch's answer, or the wrapped
/// service's own.
pub type ResponseBody<B> = Either<Full<Bytes>, B>;

/// Serves the batch endpoint at [`Config::path`] in front of the service it wraps,
/// and runs every op through that service.
///
/// Requests for the batch path ([`Config::is_batch_path`]) are answered by
/// [`BatchEndpoint::handle`]; every other request goes to the wrapped service
/// unchanged but for its body type: the service sees [`RequestBody`], whose left
/// side is the request's own body and whose right side is an op's. Services generic
/// over their body (an axum `Router`, a tonic server, most tower stacks) take it as
/// they are.
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
    /// flight.
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
    ReqBody: Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send,
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
        if !self.endpoint.config().is_batch_path(request.uri().path()) {
            return Box::pin(async move {
                let response = inner.call(request.map(Either::Left)).await?;
                Ok(response.map(Either::Right))
            });
        }
        // Ops go to clones; the ready service would only hold what it reserved.
        drop(inner);
        let executor = Ops {
            service: self.inner.clone(),
            body: PhantomData,
        };
        let endpoint = self.endpoint.clone();
        Box::pin(async move {
            let response = endpoint.handle(&executor, request).await;
            Ok(response.map(|body| Either::Left(Full::new(body))))
        })
    }
}

/// Runs ops through the wrapped service, each as the right side of its body type.
struct Ops<S, ReqBody> {
    service: S,
    body: PhantomData<fn(ReqBody)>,
}

impl<S, ReqBody, ResBody> Executor for Ops<S, ReqBody>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    fn execute(
        &self,
        request: Request<Bytes>,
        max_response_body: usize,
    ) -> impl Future<Output = Result<Response<Bytes>, ExecuteError>> {
        let request = request.map(|body| Either::Right(Full::new(body)));
        executor::call(&self.service, request, max_response_body)
    }
}
