//! The batch endpoint: one request in, decode → validate → plan → run → encode, one
//! response out. Adapters call [`BatchEndpoint::handle`] and convert types; nothing
//! else about a batch is theirs to decide.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header, request::Parts};
use http_body::Body;
use tokio::sync::Semaphore;

use crate::codec;
use crate::config::Config;
use crate::engine;
use crate::executor::{BoxError, ExecuteError, Executor, collect_body};
use crate::hooks::BatchView;
use crate::plan::Plan;
use crate::problem::Problem;
use crate::validate;

/// Marks a request as an operation of a batch; every op request carries it.
///
/// Handlers can read it to tell batched calls from direct ones; the endpoint uses it
/// to refuse a batch that arrives as an operation of another batch, however the
/// route was mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOp {
    pub(crate) index: usize,
}

impl BatchOp {
    /// The op's position in its batch.
    pub fn index(&self) -> usize {
        self.index
    }
}

/// The batch endpoint: configuration plus the state shared by all its batches.
///
/// Cheap to clone; clones share the server-wide cap on operations in flight.
///
/// ```
/// use batch_core::{BatchEndpoint, Config, ExecuteError, Executor};
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
///
/// struct Status;
/// impl Executor for Status {
///     async fn execute(&self, req: Request<Bytes>) -> Result<Response<Bytes>, ExecuteError> {
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
///     .body(Bytes::from_static(br#"{"ops": [
///         {"id": "a", "url": "/404"},
///         {"id": "b", "url": "/200", "depends_on": "a"}
///     ]}"#))
///     .unwrap();
/// let response = endpoint.handle(&Status, batch).await;
/// assert_eq!(response.status(), StatusCode::OK);
/// let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
/// assert_eq!(body["results"][0]["status"], 404);
/// assert_eq!(body["results"][1]["status"], 424, "b depends on a, which failed");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BatchEndpoint {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    in_flight: Semaphore,
}

impl BatchEndpoint {
    /// An endpoint with `config`.
    pub fn new(config: Config) -> Self {
        let in_flight = Semaphore::new(config.max_in_flight());
        Self {
            inner: Arc::new(Inner { config, in_flight }),
        }
    }

    /// The endpoint's configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Reads a batch body, refusing one larger than [`Config::max_body`] with 413
    /// before buffering more than the limit (a declared `content-length` over the
    /// limit is refused before reading at all). A refusal's response says
    /// `connection: close`, since the rest of the body was never read.
    pub async fn read_body<B>(&self, headers: &HeaderMap, body: B) -> Result<Bytes, Problem>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let limit = self.config().max_body();
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(Problem::payload_too_large(limit).closing_connection());
        }
        match collect_body(body, limit).await {
            Ok(bytes) => Ok(bytes),
            Err(ExecuteError::ResponseTooLarge { .. }) => {
                Err(Problem::payload_too_large(limit).closing_connection())
            }
            Err(ExecuteError::Failed(_)) => Err(Problem::unreadable_body().closing_connection()),
        }
    }

    /// Answers one batch request: decodes it in the format its content type names,
    /// validates it, runs its operations through `executor`, and encodes the results.
    ///
    /// Returns a problem response (400, 413, 415, 422, 503) when the batch itself is
    /// refused; nothing has run then. Dropping the returned future cancels every
    /// operation still running.
    pub async fn handle<E: Executor>(
        &self,
        executor: &E,
        request: Request<Bytes>,
    ) -> Response<Bytes> {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let config = self.config();
        let outcome = async {
            if parts.extensions.get::<BatchOp>().is_some() {
                return Err((
                    "-",
                    Problem::unprocessable("a batch cannot be an operation of another batch"),
                ));
            }
            if body.len() > config.max_body() {
                return Err(("-", Problem::payload_too_large(config.max_body())));
            }
            let codec = codec::select(&parts, &body, config).map_err(|p| ("-", p))?;
            let batch = codec.decode(&parts, &body).map_err(|p| (codec.name(), p))?;
            let plan = validate::validate(batch, &parts, config, &*codec)
                .map_err(|p| (codec.name(), p))?;
            let mut plan = plan;
            run_batch_hooks(config, &parts, &mut plan).map_err(|p| (codec.name(), p))?;
            let ops = plan.ops.len();
            let reserve = u32::try_from(ops.min(config.max_concurrency())).unwrap_or(u32::MAX);
            let _permits = self
                .inner
                .in_flight
                .try_acquire_many(reserve)
                .map_err(|_| (codec.name(), overloaded()))?;
            let response = engine::run(executor, plan, config).await;
            let failed = response
                .results
                .iter()
                .filter(|r| r.status.as_u16() >= 400)
                .count();
            let encoded = codec.encode(&response);
            Ok((codec, ops, failed, encoded))
        }
        .await;
        let elapsed = started.elapsed();
        match outcome {
            Ok((codec, ops, failed, response)) => {
                tracing::info!(
                    format = codec.name(),
                    ops,
                    failed,
                    ?elapsed,
                    "batch answered"
                );
                response
            }
            Err((format, problem)) => {
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
}

fn run_batch_hooks(config: &Config, outer: &Parts, plan: &mut Plan) -> Result<(), Problem> {
    let hooks = &config.hooks().batch;
    if hooks.is_empty() {
        return Ok(());
    }
    plan.complete_all();
    let view = BatchView {
        outer,
        ops: (0..plan.ops.len()).map(|index| plan.view(index)).collect(),
    };
    hooks.iter().try_for_each(|hook| hook(&view))
}

fn overloaded() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is running as many operations as it allows; retry shortly",
    )
    .retry_after(1)
}
