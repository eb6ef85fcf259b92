//! The batch endpoint: one request in, read → decode → plan → run → encode, one
//! response out. Adapters hand [`BatchEndpoint::handle`] the request and convert
//! types; nothing else about a batch is theirs to decide.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header, request::Parts};
use http_body::Body;
use tokio::sync::Semaphore;

use crate::changes::{Hub, LocalHub, Watch};
use crate::codec;
use crate::config::{Config, SocketConfig};
use crate::engine;
use crate::executor::{BoxError, ExecuteError, Executor, collect_body};
use crate::hooks::{BatchView, OpView};
use crate::model::{BatchOp, BatchRequest, BatchResponse, Format};
use crate::plan::{self, Plan};
use crate::problem::{self, Problem};

/// The batch endpoint: configuration plus the state shared by all its batches.
///
/// Cheap to clone; clones share the server-wide cap on operations in flight.
///
/// ```
/// use batch_core::{BatchEndpoint, Config, ExecuteError, Executor};
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
///
/// /// Answers `/{code}` with that status.
/// struct Status;
/// impl Executor for Status {
///     async fn execute(&self, req: Request<Bytes>, _limit: usize) -> Result<Response<Bytes>, ExecuteError> {
///         let code: u16 = req.uri().path()[1..].parse().unwrap_or(400);
///         let mut response = Response::new(Bytes::new());
///         *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
///         Ok(response)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let endpoint = BatchEndpoint::new(Config::default());
/// let batch = Request::post("/batch")
///     .header("content-type", "application/json")
///     .body(Full::new(Bytes::from_static(br#"{"ops": [
///         {"id": "a", "url": "/404"},
///         {"id": "b", "url": "/200", "depends_on": "a"}
///     ]}"#)))
///     .unwrap();
/// let response = endpoint.handle(&Status, batch).await;
/// assert_eq!(response.status(), StatusCode::OK);
/// let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
/// assert_eq!(body["results"][0]["status"], 404);
/// assert_eq!(body["results"][1]["status"], 424, "b depends on a, which failed");
/// # }
/// ```
#[derive(Clone)]
pub struct BatchEndpoint {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    in_flight: Semaphore,
    /// Where changes go, and the subscriptions of this replica's sockets.
    hub: Arc<dyn Hub>,
    /// One permit per socket that may be open.
    sockets: Arc<Semaphore>,
}

impl std::fmt::Debug for BatchEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchEndpoint")
            .field("config", &self.inner.config)
            .field("subscribers", self.inner.hub.subscribers())
            .finish_non_exhaustive()
    }
}

impl From<Config> for BatchEndpoint {
    fn from(config: Config) -> Self {
        Self::new(config)
    }
}

impl BatchEndpoint {
    /// An endpoint with `config`; with sockets on, its changes go to the sockets of
    /// this process ([`LocalHub`]).
    pub fn new(config: Config) -> Self {
        Self::with_hub(config, LocalHub::new())
    }

    /// An endpoint with `config` whose changes go through `hub`, to the sockets of
    /// every replica the hub links.
    pub fn with_hub(config: Config, hub: impl Hub) -> Self {
        let in_flight = Semaphore::new(config.max_in_flight());
        let sockets = Arc::new(Semaphore::new(
            config.sockets().map_or(0, SocketConfig::max_sockets),
        ));
        Self {
            inner: Arc::new(Inner {
                config,
                in_flight,
                hub: Arc::new(hub),
                sockets,
            }),
        }
    }

    /// The endpoint's configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Answers one request to the batch endpoint: reads its body, decodes it in the
    /// format its content type names, runs its operations through `executor`, and
    /// encodes the results in the same format.
    ///
    /// `OPTIONS` (but a CORS preflight) is answered 200 with `allow: POST, OPTIONS`
    /// and the [`Config::capabilities`] as JSON, so clients can size their batches.
    ///
    /// The body is read up to [`Config::max_body`]: a larger one (declared or
    /// streamed) is refused with 413 before more than the limit is buffered, with
    /// `connection: close`, since the rest of it was never read. A batch that is
    /// refused gets a problem response (400, 405, 413, 415, 422, 503, 403 from route
    /// rules, or whatever a batch hook answers) and nothing runs. Dropping the returned future cancels every operation still running.
    pub async fn handle<E, B>(&self, executor: &E, request: Request<B>) -> Response<Bytes>
    where
        E: Executor,
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        if is_discovery(&request) {
            return self.discovery();
        }
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let mut format = None;
        let outcome = async {
            if parts.method != Method::POST {
                return Err(Problem::method_not_allowed());
            }
            let body = read_body(&parts.headers, body, self.config().max_body()).await?;
            let chosen = codec::format_of(&parts, &body, self.config())?;
            format = Some(chosen);
            let batch = codec::decode_as(chosen, &parts, &body, self.config())?;
            self.run(executor, &parts, batch).await
        }
        .await;
        let elapsed = started.elapsed();
        let format = format.map_or("-", Format::name);
        match outcome {
            Ok(response) => {
                let failed = response
                    .results
                    .iter()
                    .filter(|r| r.status.as_u16() >= 400)
                    .count();
                tracing::info!(
                    format,
                    ops = response.results.len(),
                    failed,
                    ?elapsed,
                    "batch answered"
                );
                codec::encode(&response, response.format())
            }
            Err(problem) => {
                tracing::info!(
                    format,
                    status = problem.status().as_u16(),
                    detail = problem.detail(),
                    ?elapsed,
                    "batch refused"
                );
                problem.into_response()
            }
        }
    }

    /// Runs a decoded batch: checks every op (url, method, headers, ids,
    /// dependencies) against the configuration, runs the batch hooks, and runs the
    /// ops through `executor` on the caller's task, concurrently where the
    /// dependencies allow. `outer` is the request the batch came in: ops inherit its
    /// headers and extensions.
    ///
    /// Refuses the batch with a [`Problem`] (413, 422, a hook's refusal, or 503 when
    /// the server-wide cap on operations in flight is reached) before anything runs.
    ///
    /// ```
    /// use batch_core::{BatchEndpoint, BatchRequest, Config, ExecuteError, Executor, Operation};
    /// use bytes::Bytes;
    /// use http::{Request, Response, StatusCode};
    ///
    /// struct Ok204;
    /// impl Executor for Ok204 {
    ///     async fn execute(&self, _: Request<Bytes>, _: usize) -> Result<Response<Bytes>, ExecuteError> {
    ///         let mut response = Response::new(Bytes::new());
    ///         *response.status_mut() = StatusCode::NO_CONTENT;
    ///         Ok(response)
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let endpoint = BatchEndpoint::new(Config::default());
    /// let (outer, ()) = Request::post("/batch").body(()).unwrap().into_parts();
    /// let batch = BatchRequest::new(vec![Operation::new("DELETE", "/items/1")]);
    /// let response = endpoint.run(&Ok204, &outer, batch).await.unwrap();
    /// assert_eq!(response.results[0].status, StatusCode::NO_CONTENT);
    ///
    /// let nested = BatchRequest::new(vec![Operation::new("POST", "/batch")]);
    /// let problem = endpoint.run(&Ok204, &outer, nested).await.unwrap_err();
    /// assert_eq!(problem.status(), StatusCode::UNPROCESSABLE_ENTITY);
    /// # }
    /// ```
    pub async fn run<E: Executor>(
        &self,
        executor: &E,
        outer: &Parts,
        batch: BatchRequest,
    ) -> Result<BatchResponse, Problem> {
        let config = self.config();
        if outer.extensions.get::<BatchOp>().is_some() {
            return Err(Problem::unprocessable(
                "a batch cannot be an operation of another batch",
            ));
        }
        let mut plan = plan::plan(batch, outer, config)?;
        run_batch_hooks(config, outer, &mut plan).await?;
        let reserve =
            u32::try_from(plan.ops.len().min(config.max_concurrency())).unwrap_or(u32::MAX);
        let _permits = self
            .inner
            .in_flight
            .try_acquire_many(reserve)
            .map_err(|_| overloaded())?;
        Ok(engine::run(executor, plan, config, self.changes()).await)
    }

    /// Watches a request that reaches the application directly (not as an op) for
    /// the change it makes, when sockets are on and it is a `POST`, `PATCH`, `PUT`
    /// or `DELETE`: the adapter hands the [`Watch`] what passes through, and the
    /// event is published when the answer ends.
    ///
    /// Ops of batches and of sockets are published by the engine itself, and a
    /// request for the batch or socket path changes no resource: none is watched.
    pub fn watch(&self, request: &Parts) -> Option<Watch> {
        let hub = self.changes().map(|_| Arc::clone(&self.inner.hub))?;
        let path = request.uri.path();
        if self.config().is_batch_path(path) || self.is_socket_path(path) {
            return None;
        }
        Watch::of(request, hub, self.config().max_body())
    }

    /// How many subscriptions the sockets of this replica hold, all together.
    pub fn subscriptions(&self) -> usize {
        self.inner.hub.subscribers().count()
    }

    /// How many sockets are open on this endpoint.
    pub fn open_sockets(&self) -> usize {
        self.config().sockets().map_or(0, |s| {
            s.max_sockets() - self.inner.sockets.available_permits()
        })
    }

    /// The answer to `OPTIONS` on the batch path: 200 with `allow` and the
    /// [`Config::capabilities`] as JSON.
    fn discovery(&self) -> Response<Bytes> {
        let body = serde_json::to_vec(&self.config().capabilities()).unwrap_or_default();
        let mut response = Response::new(Bytes::from(body));
        let headers = response.headers_mut();
        headers.insert(header::ALLOW, HeaderValue::from_static(problem::ALLOW));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }

    /// The hub changes are published through, when sockets are on.
    pub(crate) fn changes(&self) -> Option<&dyn Hub> {
        self.config().sockets().map(|_| &*self.inner.hub)
    }

    /// The hub, for socket sessions' subscriptions.
    pub(crate) fn hub(&self) -> &dyn Hub {
        &*self.inner.hub
    }

    /// The permits of open sockets.
    pub(crate) fn socket_permits(&self) -> &Arc<Semaphore> {
        &self.inner.sockets
    }
}

/// Whether `request` asks what the endpoint can do: an `OPTIONS` that is not a CORS
/// preflight (those are the app's CORS middleware's to answer, in front of the
/// endpoint).
fn is_discovery<B>(request: &Request<B>) -> bool {
    request.method() == Method::OPTIONS
        && !request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Reads a batch body, refusing one larger than `limit` with 413 before buffering
/// more than the limit (a declared `content-length` over it is refused before
/// reading at all).
async fn read_body<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, Problem>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Problem::payload_too_large(limit).closing_connection());
    }
    collect_body(body, limit).await.map_err(|err| {
        match err {
            ExecuteError::ResponseTooLarge { .. } => Problem::payload_too_large(limit),
            ExecuteError::Failed(_) => Problem::unreadable_body(),
        }
        .closing_connection()
    })
}

/// Runs the batch hooks, one after another, on the batch with every op's request
/// complete.
async fn run_batch_hooks(config: &Config, outer: &Parts, plan: &mut Plan) -> Result<(), Problem> {
    let hooks = &config.hooks().batch;
    if hooks.is_empty() {
        return Ok(());
    }
    plan.complete_all();
    let ops = plan
        .ops
        .iter()
        .zip(&plan.ids)
        .enumerate()
        .map(|(index, (op, id))| OpView::new(index, id, &op.request))
        .collect();
    let view = BatchView::new(outer, ops);
    for hook in hooks {
        hook(&view).await?;
    }
    Ok(())
}

fn overloaded() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is running as many operations as it allows; retry shortly",
    )
    .retry_after(1)
}
