//! The batch endpoint: one request in, read → decode → plan → run → encode, one
//! response out. Adapters hand [`BatchEndpoint::handle`] the request and convert
//! types; nothing else about a batch is theirs to decide.

use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header, request::Parts};
use http_body::Body;
use http_body_util::BodyExt;
use http_body_util::combinators::Collect;
use tokio::sync::{Semaphore, mpsc};
use tracing::{Instrument, Span};

use crate::changes::{Hub, LocalHub, Watch};
use crate::codec;
use crate::config::{Config, SocketConfig};
use crate::engine;
use crate::executor::{BoxError, ExecuteError, Executor, collect_body};
use crate::hooks::{BatchHook, BatchView, OpView};
use crate::idempotency::{Admission, Claim, IDEMPOTENCY_KEY};
use crate::in_flight::{InFlight, Places};
use crate::model::{BatchOp, BatchRequest, BatchResponse, Format};
use crate::observe::{
    BatchId, BatchMeter, Reason, Tally, Transport, X_BATCH_ID, X_REQUEST_ID, batch_span,
    record_field,
};
use crate::plan::{self, Decoded, Outer, Plan};
use crate::problem::{self, Problem};
use crate::stream::{self, BatchBody, Streamer, Streaming};

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
    in_flight: Arc<InFlight>,
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
        // Drawn now, once per process, rather than by the first batch without an id.
        BatchId::draw_prefix();
        plan::make_marked();
        if let Some(sockets) = config.sockets() {
            hub.subscribers().retain(crate::changes::Retention {
                max_events: sockets.history_events(),
                max_age: sockets.history_age(),
            });
        }
        let in_flight = Arc::new(InFlight::new(config.max_in_flight()));
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
    /// streamed) is refused with 413 and `connection: close` without more than the
    /// limit ever being buffered. What the client still sends of a body up to 4 MiB
    /// past the limit is read and discarded first (for at most 2 s), so that the 413
    /// reaches it rather than a reset connection. A batch that is
    /// refused gets a problem response (400, 405, 413, 415, 422, 503, 403 from route
    /// rules, or whatever a batch hook answers) and nothing runs. Dropping the
    /// returned future cancels every operation still running.
    ///
    /// A batch sent with an `Idempotency-Key` runs at most once per key and caller:
    /// a retry gets the stored answer, a reused key 422, a key whose batch still runs
    /// 409, and with the store unreachable the batch is refused with 503 (see
    /// [`ConfigBuilder::idempotency`](crate::ConfigBuilder::idempotency)).
    // `respond`'s own future, made to read a streamed answer whole: an `async fn`
    // awaiting `respond` would hold the request it handed on (256 bytes, for the
    // whole batch) and take the answer apart and put it together again (~190
    // instructions a batch).
    pub fn handle<'s, 'e, E, B>(
        &'s self,
        executor: &'e E,
        request: Request<B>,
    ) -> impl Future<Output = Response<Bytes>> + use<'s, 'e, E, B>
    where
        E: Executor,
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        self.answer::<_, _, Whole>(executor, request)
    }

    /// Answers one request as [`handle`](Self::handle) does, but streams the results
    /// of a batch whose `Accept` asks for it: `application/x-ndjson` (or
    /// `application/jsonl`) and `text/event-stream` for any batch, `multipart/mixed`
    /// for a multipart one. Adapters serve this one.
    ///
    /// A streamed answer is `200` once the batch has validated (a refused batch is
    /// still a problem response); its [`BatchBody`] runs the batch as it is read and
    /// writes each result as its op finishes, then a `done` line or event with the
    /// counts. Dropping the body cancels the ops not yet finished. The answer of a
    /// batch sent with an `Idempotency-Key` is kept whole, once it has been written.
    ///
    /// ```
    /// use batch_core::{BatchEndpoint, Config, ExecuteError, Executor};
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body_util::{BodyExt, Full};
    ///
    /// struct Ok200;
    /// impl Executor for Ok200 {
    ///     async fn execute(&self, _: Request<Bytes>, _: usize) -> Result<Response<Bytes>, ExecuteError> {
    ///         Ok(Response::new(Bytes::new()))
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let endpoint = BatchEndpoint::new(Config::default());
    /// let batch = Request::post("/batch")
    ///     .header("content-type", "application/json")
    ///     .header("accept", "application/x-ndjson")
    ///     .body(Full::new(Bytes::from_static(br#"{"ops": [{"id": "a", "url": "/"}]}"#)))
    ///     .unwrap();
    /// let response = endpoint.respond(Ok200, batch).await;
    /// assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    /// let lines = response.into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(
    ///     lines,
    ///     "{\"index\":0,\"id\":\"a\",\"status\":200,\"headers\":{},\"body\":null}\n\
    ///      {\"done\":true,\"ops\":1,\"failed\":0}\n"
    /// );
    /// # }
    /// ```
    pub fn respond<E, B>(
        &self,
        executor: E,
        request: Request<B>,
    ) -> impl Future<Output = Response<BatchBody<impl Future<Output = ()> + use<E, B>>>> + use<'_, E, B>
    where
        E: Executor,
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        self.answer::<_, _, AsMade>(executor, request)
    }

    /// Answers one request as [`respond`](Self::respond) does, the answer handed
    /// out as `D` delivers it.
    fn answer<E, B, D>(
        &self,
        executor: E,
        request: Request<B>,
    ) -> impl Future<Output = D::Answer<impl Future<Output = ()> + use<E, B, D>>> + use<'_, E, B, D>
    where
        E: Executor,
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
        D: Delivery,
    {
        // Split before the future is made: an `async fn` would hold the request it
        // was handed beside its parts for as long as the batch runs.
        let discovery = is_discovery(&request);
        let (mut parts, body) = request.into_parts();
        async move {
            let response = if discovery {
                self.discovery().map(BatchBody::full)
            } else {
                let meter = BatchMeter::start(Transport::Http);
                let read = Read::of(&parts.headers);
                let id = read.id;
                let span = batch_span(&id, Transport::Http);
                let mut format = None;
                let mut batch_header = None;
                let batch = async {
                    if parts.method != Method::POST {
                        return Err(Refused::check(Problem::method_not_allowed()));
                    }
                    let idempotency = self.config().idempotency();
                    let key = if read.idempotency_key {
                        idempotency.key_of(&parts).map_err(Refused::idempotency)?
                    } else {
                        None
                    };
                    let body =
                        read_body(read.declared_length, body, self.config().max_body()).await?;
                    let chosen = if read.json {
                        codec::json_format(&body, self.config())
                    } else {
                        codec::format_of(&parts, &body, self.config())
                    }
                    .map_err(Refused::check)?;
                    format = Some(chosen);
                    record_field(&span, "format", chosen.name());
                    // An unkeyed batch runs unprotected, without the admission's
                    // future (made, polled and its answer moved out: ~70 instructions).
                    let claim = match key {
                        None => None,
                        Some(key) => {
                            let deadline = self.config().batch_deadline();
                            match idempotency
                                .admit(key, &parts, chosen, &body, deadline)
                                .await
                                .map_err(Refused::idempotency)?
                            {
                                Admission::Claimed(claim) => Some(claim),
                                Admission::Replay(answer) => return Ok(Answered::Replayed(answer)),
                            }
                        }
                    };
                    // Read before the outer request goes to the batch's ops.
                    let streaming = if read.accept {
                        stream::requested(&parts.headers, chosen == Format::Multipart)
                    } else {
                        None
                    };
                    // Nothing needs the outer headers and extensions after planning but
                    // the batch hooks: without them, the ops take them. The decoded batch
                    // is matched as it comes, not named: a local whose parts the arms
                    // move out keeps its place (112 bytes) in the batch's future until
                    // the batch ends.
                    let prepared = match plan::decode(chosen, &parts, &body, self.config()) {
                        Ok(batch) if self.config().hooks().batch.is_empty() => {
                            self.prepare_unhooked(Outer::Taken(&mut parts), batch, &id, &span)
                        }
                        Ok(batch) => self.prepare(&parts, batch, &id, &span).await,
                        Err(problem) => Err(Refused::check(problem)),
                    };
                    // Matched alone, not paired with the claim: the pair was moved twice
                    // (200 bytes) on its way to its parts.
                    let mut prepared = match prepared {
                        Ok(prepared) => prepared,
                        Err(refused) => {
                            // Nothing ran, so the key may run the batch again.
                            if let Some(claim) = claim {
                                claim.release().await;
                            }
                            return Err(refused);
                        }
                    };
                    batch_header = id.generated_header(Some(&mut prepared.plan.shared.op_ids));
                    if let Some(kind) = streaming {
                        return Ok(Answered::Streaming(Box::new((prepared, claim)), kind));
                    }
                    let Prepared {
                        plan,
                        _places: places,
                    } = prepared;
                    // A native answer is written as the results come; the other formats
                    // are encoded from them all. Written here, not in a function of its
                    // own: the answer, made at the end, would be moved out of that
                    // function's future and again out of its await (~60 instructions).
                    let (tally, answer) = if chosen == Format::Native {
                        let config = self.config();
                        let mut writing = engine::Writing::new(&plan, config.max_batch_response());
                        let ids =
                            engine::run(&executor, plan, config, self.changes(), &mut writing)
                                .await;
                        writing.into_response(ids)
                    } else {
                        let response = self.run_prepared(&executor, plan).await;
                        (
                            Tally::of(&response.results),
                            codec::encode(&response, chosen),
                        )
                    };
                    drop(places);
                    if let Some(claim) = claim {
                        claim.keep(&answer).await;
                    }
                    // Recorded here, in the batch's span as it is polled, so that the
                    // answer is carried out alone: with its tally and format it was
                    // moved once more on its way out.
                    record_answer(&meter, &span, chosen, &tally);
                    Ok(Answered::Ran(answer))
                };
                let outcome = in_span(&span, pin!(batch)).await;
                let mut response = {
                    let _entered = span.enter();
                    match outcome {
                        Ok(Answered::Ran(answer)) => answer.map(BatchBody::full),
                        Ok(Answered::Replayed(answer)) => {
                            tracing::info!(
                                elapsed = ?meter.elapsed(),
                                "batch answered again from its idempotency key"
                            );
                            answer.map(BatchBody::full)
                        }
                        Ok(Answered::Streaming(ready, kind)) => {
                            drop(_entered);
                            let (prepared, claim) = *ready;
                            self.stream(executor, prepared, claim, kind, meter, span)
                        }
                        Err(refused) => record_refusal(&meter, &span, format, refused)
                            .into_response()
                            .map(BatchBody::full),
                    }
                };
                // The caller named no batch: its id is in the answer, to find its logs by.
                if let Some(value) = batch_header.or_else(|| id.generated_header(None)) {
                    response.headers_mut().insert(X_BATCH_ID, value);
                }
                response
            };
            // Most answers are whole already: only a streamed one is read to its
            // end, and only where it is wanted whole.
            match D::deliver(response) {
                Ok(answer) => answer,
                Err(reading) => reading.await,
            }
        }
    }

    /// The streamed answer of a batch ready to run: `200` now, and a body that runs
    /// the batch as it is read, writing `kind`, and records how the batch ended in
    /// `meter` and `span` (and keeps its answer under `claim`) once it has.
    fn stream<E: Executor>(
        &self,
        executor: E,
        prepared: Prepared,
        claim: Option<Claim>,
        kind: Streaming,
        meter: BatchMeter,
        span: Span,
    ) -> Response<BatchBody<impl Future<Output = ()> + use<E>>> {
        // Results the reader has not taken yet, at most: past them the batch waits.
        const AHEAD: usize = 16;
        let (frames, taken) = mpsc::channel(AHEAD);
        let format = prepared.plan.layout.format;
        let mut streamer = Streamer::new(
            kind,
            &prepared.plan.layout,
            prepared.plan.include_headers,
            frames,
            claim.is_some(),
        );
        let content_type = streamer.content_type();
        let endpoint = self.clone();
        let driver = async move {
            let Prepared { plan, _places } = prepared;
            let config = endpoint.config();
            engine::run(&executor, plan, config, endpoint.changes(), &mut streamer).await;
            let (tally, kept) = streamer.finish().await;
            if let (Some(claim), Some(answer)) = (claim, kept) {
                claim.keep(&answer).await;
            }
            let failed = meter.tallied(format, &tally);
            record_field(&Span::current(), "status", 200);
            let ops = tally.ops();
            tracing::info!(ops, failed, elapsed = ?meter.elapsed(), "batch streamed");
        }
        .instrument(span);
        let mut response = Response::new(BatchBody::streamed(driver, taken));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, content_type);
        // Proxies that buffer answers (nginx) pass this one through as it comes.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
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
        let id = BatchId::of(&outer.headers);
        self.run_as(executor, outer, batch, &id, Transport::Http)
            .await
    }

    /// [`run`](Self::run) for a batch named `id` that came over `transport`, in a
    /// span of its own and metered.
    pub(crate) async fn run_as<E: Executor>(
        &self,
        executor: &E,
        outer: &Parts,
        batch: BatchRequest,
        id: &BatchId,
        transport: Transport,
    ) -> Result<BatchResponse, Problem> {
        let meter = BatchMeter::start(transport);
        let span = batch_span(id, transport);
        let format = batch.layout.format;
        span.record("format", format.name());
        let batch = pin!(self.plan_and_run(executor, outer, batch, id, &span));
        let outcome = in_span(&span, batch).await;
        let _entered = span.enter();
        conclude(&meter, &span, Some(format), outcome)
    }

    /// Plans a decoded batch, runs its hooks, reserves its ops' places and runs it.
    async fn plan_and_run<E: Executor>(
        &self,
        executor: &E,
        outer: &Parts,
        batch: BatchRequest,
        id: &BatchId,
        span: &Span,
    ) -> Result<BatchResponse, Refused> {
        let prepared = if self.config().hooks().batch.is_empty() {
            self.prepare_unhooked(Outer::Lent(outer), batch.into(), id, span)?
        } else {
            self.prepare(outer, batch.into(), id, span).await?
        };
        let Prepared { plan, _places } = prepared;
        Ok(self.run_prepared(executor, plan).await)
    }

    /// Plans a decoded batch, runs the batch hooks on it and reserves its ops'
    /// places: what has to pass before anything runs (and before a streamed answer's
    /// `200`). The ops inherit copies of `outer`'s headers and extensions.
    ///
    /// Only for an endpoint with batch hooks. Without them, [`prepare_unhooked`]
    /// prepares a batch at once: this future would hold `outer` and `batch`, copied
    /// into it and into its caller's (300 bytes each time), for nothing to await.
    ///
    /// [`prepare_unhooked`]: Self::prepare_unhooked
    async fn prepare(
        &self,
        outer: &Parts,
        batch: Decoded,
        id: &BatchId,
        span: &Span,
    ) -> Result<Prepared, Refused> {
        let hooks = &self.config().hooks().batch;
        // Batch hooks see the outer request as it came: the ops then inherit copies
        // of its headers and extensions, where without hooks they may take them.
        let mut plan = self.planned(Outer::Lent(outer), batch, id, span)?;
        run_batch_hooks(hooks, outer, &mut plan)
            .await
            .map_err(|problem| Refused::new(Reason::Hook, problem))?;
        self.reserve(plan)
    }

    /// [`prepare`](Self::prepare) for an endpoint without batch hooks: the ops
    /// inherit from `outer` as [`plan::plan`] says.
    // Always inlined, with `planned`, into the batch's future: as calls of their
    // own they cost a batch ~50 instructions more (the decoded batch handed down,
    // and `plan` inlined into `planned` with its header inserts left calls).
    #[inline(always)]
    fn prepare_unhooked(
        &self,
        outer: Outer<'_>,
        batch: Decoded,
        id: &BatchId,
        span: &Span,
    ) -> Result<Prepared, Refused> {
        let plan = self.planned(outer, batch, id, span)?;
        self.reserve(plan)
    }

    /// Plans a decoded batch that came in `outer`, which may not be an op itself, and
    /// records its size in its `span` (named: the current one is a thread-local
    /// lookup away).
    // Always inlined: see `prepare_unhooked`.
    #[inline(always)]
    fn planned(
        &self,
        outer: Outer<'_>,
        batch: Decoded,
        id: &BatchId,
        span: &Span,
    ) -> Result<Box<Plan>, Refused> {
        if outer.parts().extensions.get::<BatchOp>().is_some() {
            return Err(Refused::check(Problem::unprocessable(
                "a batch cannot be an operation of another batch",
            )));
        }
        let plan = plan::plan(batch, outer, self.config(), id).map_err(Refused::check)?;
        record_field(span, "ops", plan.ops.len());
        Ok(plan)
    }

    /// Reserves the places of a planned batch's ops among those in flight.
    fn reserve(&self, plan: Box<Plan>) -> Result<Prepared, Refused> {
        let reserve = plan.ops.len().min(self.config().max_concurrency());
        let places = self
            .inner
            .in_flight
            .try_take(reserve)
            .ok_or_else(|| Refused::new(Reason::Overload, overloaded()))?;
        Ok(Prepared {
            plan,
            _places: places,
        })
    }

    /// Runs the plan of a prepared batch and collects its results, the buffered
    /// answer. Handed the plan alone, not the batch's places among the ops in flight,
    /// which its caller holds meanwhile: the future holds what it is handed for as
    /// long as it runs, beside what it takes out of it.
    async fn run_prepared<E: Executor>(&self, executor: &E, mut plan: Box<Plan>) -> BatchResponse {
        let config = self.config();
        let mut collect = engine::Collect::new(&plan, config.max_batch_response());
        // The engine has no use for the layout: the answer takes it.
        let layout = std::mem::take(&mut plan.layout);
        let include_headers = plan.include_headers;
        let ids = engine::run(executor, plan, config, self.changes(), &mut collect).await;
        collect.into_response(ids, include_headers, layout)
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

/// What a request to the endpoint was answered with, besides a refusal.
enum Answered {
    /// The batch ran, and how it ended is recorded: the encoding of its results.
    Ran(Response<Bytes>),
    /// A retry under the key of a batch that ran: the stored answer.
    Replayed(Response<Bytes>),
    /// The batch is ready to run as its streamed answer is read, with its key.
    /// Boxed: the batch's future holds an `Answered`, and every buffered batch would
    /// pay for the room of this rarer one.
    Streaming(Box<(Prepared, Option<Claim>)>, Streaming),
}

/// A batch that passed every check and holds its places among the ops in flight
/// until it ends.
struct Prepared {
    plan: Box<Plan>,
    _places: Places,
}

/// A batch refused before any op ran, and why.
///
/// Its problem is boxed: a batch's preparing steps hand their answers on as
/// `Result`s, which a problem held in place made as large as itself (120 bytes),
/// and moved as such, for a batch that passes.
struct Refused {
    reason: Reason,
    problem: Box<Problem>,
}

impl Refused {
    /// A refusal for `reason`.
    fn new(reason: Reason, problem: Problem) -> Self {
        Self {
            reason,
            problem: Box::new(problem),
        }
    }

    /// A refusal by the endpoint's own checks (of size, syntax, fields).
    fn check(problem: Problem) -> Self {
        Self::new(Reason::of_check(problem.status()), problem)
    }

    /// A refusal for the batch's idempotency key.
    fn idempotency(problem: Problem) -> Self {
        Self::new(Reason::Idempotency, problem)
    }
}

/// Polls `future` inside `span`, where it stays: [`Instrument`] would move it into a
/// future of its own (and that one into the caller's), and a batch's future is
/// kilobytes. Unlike `Instrument`, it does not enter the span to drop the future: a
/// batch cut short (its client left) drops its parts outside the batch's span; each
/// op's future still drops inside its own.
fn in_span<'a, F: Future>(
    span: &'a Span,
    mut future: Pin<&'a mut F>,
) -> impl Future<Output = F::Output> + 'a {
    std::future::poll_fn(move |cx| {
        let _entered = span.enter();
        future.as_mut().poll(cx)
    })
}

/// Records how a batch ended, in `format` if it was decoded that far (see
/// [`record_answer`] and [`record_refusal`]). Runs inside the batch's `span`.
fn conclude(
    meter: &BatchMeter,
    span: &Span,
    format: Option<Format>,
    outcome: Result<BatchResponse, Refused>,
) -> Result<BatchResponse, Problem> {
    match outcome {
        Ok(response) => {
            let tally = Tally::of(&response.results);
            record_answer(meter, span, response.format(), &tally);
            Ok(response)
        }
        Err(refused) => Err(record_refusal(meter, span, format, refused)),
    }
}

/// How [`BatchEndpoint::answer`] hands its answer out: as it is made, a streamed
/// body still to be read ([`AsMade`]), or read whole ([`Whole`]).
trait Delivery {
    /// The answer as handed out, a streamed body's driver being `S`.
    type Answer<S: Future<Output = ()>>;
    /// What reads a streamed answer until it can be handed out.
    type Reading<S: Future<Output = ()>>: Future<Output = Self::Answer<S>>;

    /// The answer of `response`: at once, or once its reading is done.
    fn deliver<S: Future<Output = ()>>(
        response: Response<BatchBody<S>>,
    ) -> Result<Self::Answer<S>, Self::Reading<S>>;
}

/// Answers as they are made ([`BatchEndpoint::respond`]).
struct AsMade;

impl Delivery for AsMade {
    type Answer<S: Future<Output = ()>> = Response<BatchBody<S>>;
    // Never made: every answer is handed out at once.
    type Reading<S: Future<Output = ()>> = std::future::Pending<Response<BatchBody<S>>>;

    fn deliver<S: Future<Output = ()>>(
        response: Response<BatchBody<S>>,
    ) -> Result<Self::Answer<S>, Self::Reading<S>> {
        Ok(response)
    }
}

/// Answers read whole ([`BatchEndpoint::handle`]).
struct Whole;

impl Delivery for Whole {
    type Answer<S: Future<Output = ()>> = Response<Bytes>;
    type Reading<S: Future<Output = ()>> = ReadWhole<S>;

    fn deliver<S: Future<Output = ()>>(
        response: Response<BatchBody<S>>,
    ) -> Result<Self::Answer<S>, Self::Reading<S>> {
        let (parts, body) = response.into_parts();
        match body.into_full() {
            Ok(bytes) => Ok(Response::from_parts(parts, bytes)),
            Err(streamed) => Err(ReadWhole {
                head: Response::from_parts(parts, ()),
                body: streamed.collect(),
            }),
        }
    }
}

/// A streamed answer read to its end, for [`Whole`].
struct ReadWhole<S: Future<Output = ()>> {
    /// The answer's status and headers; a default one once it is handed out.
    head: Response<()>,
    body: Collect<BatchBody<S>>,
}

impl<S: Future<Output = ()>> Future for ReadWhole<S> {
    type Output = Response<Bytes>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let bytes = match ready!(Pin::new(&mut self.body).poll(cx)) {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        Poll::Ready(std::mem::take(&mut self.head).map(|()| bytes))
    }
}

/// Records a batch that ran: its metrics, its `span`'s `status`, and one line (INFO
/// for a request, DEBUG for a socket's message, which may be a single read). Runs
/// inside `span`, which is named rather than looked up as the current one.
///
/// The clock is read for the line only if it is written, and for the metrics only
/// if a recorder records them (each its own reading, then).
fn record_answer(meter: &BatchMeter, span: &Span, format: Format, tally: &Tally) {
    let failed = meter.tallied(format, tally);
    record_field(span, "status", 200);
    let ops = tally.ops();
    if meter.transport() == Transport::Http {
        tracing::info!(ops, failed, elapsed = ?meter.elapsed(), "batch answered");
    } else {
        tracing::debug!(ops, failed, elapsed = ?meter.elapsed(), "batch answered");
    }
}

/// Records a refused batch as [`record_answer`] records one that ran, and gives
/// back its problem.
fn record_refusal(
    meter: &BatchMeter,
    span: &Span,
    format: Option<Format>,
    refused: Refused,
) -> Problem {
    let Refused { reason, problem } = refused;
    meter.refused(format, reason);
    let status = problem.status().as_u16();
    record_field(span, "status", status);
    let detail = problem.detail();
    if meter.transport() == Transport::Http {
        tracing::info!(status, detail, elapsed = ?meter.elapsed(), "batch refused");
    } else {
        tracing::debug!(status, detail, elapsed = ?meter.elapsed(), "batch refused");
    }
    *problem
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

/// What the endpoint reads of the outer request's headers itself, found in one walk
/// of them rather than a lookup each: every batch asks for them all, and most
/// carry few of them.
struct Read {
    /// Whether the first `content-type` is exactly `application/json`, as nearly
    /// every batch's is: its format is then the body's shape alone.
    json: bool,
    /// The batch's id, from the first `x-request-id`.
    id: BatchId,
    /// The length the first `content-length` declares, which may refuse the body
    /// before it is read.
    declared_length: Option<u64>,
    /// Whether there is an `Idempotency-Key` to check (all its values, then).
    idempotency_key: bool,
    /// Whether there is an `accept` that may ask for a streamed answer.
    accept: bool,
}

impl Read {
    fn of(headers: &HeaderMap) -> Self {
        let (mut request_id, mut content_length, mut content_type) = (None, None, None);
        let (mut idempotency_key, mut accept) = (false, false);
        // Each name comes first with its first value: `get_or_insert` keeps that one.
        for (name, value) in headers {
            if name == header::CONTENT_TYPE {
                content_type.get_or_insert(value);
            } else if name == header::CONTENT_LENGTH {
                content_length.get_or_insert(value);
            } else if name == header::ACCEPT {
                accept = true;
            } else if name == X_REQUEST_ID {
                request_id.get_or_insert(value);
            } else if name == IDEMPOTENCY_KEY {
                idempotency_key = true;
            }
        }
        Self {
            json: content_type.is_some_and(codec::is_exactly_json),
            id: BatchId::named(request_id),
            declared_length: content_length
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok()),
            idempotency_key,
            accept,
        }
    }
}

/// Reads a batch body, refusing one larger than `limit` with 413 before buffering
/// more than the limit (a `declared` length over it is refused before reading at
/// all). Refused as a [`Refused`], whose problem is boxed: the answer of a body
/// read whole is then moved as 40 bytes, not as large as a problem.
async fn read_body<B>(declared: Option<u64>, body: B, limit: usize) -> Result<Bytes, Refused>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = pin!(body);
    if declared.is_none_or(|len| len <= limit as u64) {
        match collect_body(body.as_mut(), limit).await {
            Ok(bytes) => return Ok(bytes),
            Err(ExecuteError::ResponseTooLarge { .. }) => {}
            Err(ExecuteError::Failed(_)) => {
                return Err(Refused::check(
                    Problem::unreadable_body().closing_connection(),
                ));
            }
        }
    }
    if declared.is_none_or(|len| len <= (limit as u64).saturating_add(DRAIN_BYTES)) {
        drain(body).await;
    }
    Err(Refused::check(
        Problem::payload_too_large(limit).closing_connection(),
    ))
}

/// How much of a refused body past the limit is read and thrown away, and for how
/// long, before the 413 goes out.
///
/// A server that answers and closes while the client is still sending leaves unread
/// bytes behind, and the kernel answers them with a reset that can destroy the 413
/// before the client reads it: the client sees a broken connection instead of the
/// problem. Reading the rest of a body that is only somewhat too large lets the 413
/// arrive; a body far past the limit is refused at once.
const DRAIN_BYTES: u64 = 4 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(2);

async fn drain<B>(mut body: Pin<&mut B>)
where
    B: Body<Data = Bytes>,
{
    let mut left = DRAIN_BYTES;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(frame)) = body.frame().await {
            let len = frame.data_ref().map_or(0, |data| data.len() as u64);
            match left.checked_sub(len) {
                Some(rest) => left = rest,
                None => break,
            }
        }
    })
    .await;
}

/// Runs the batch hooks, one after another, on the batch with every op's request
/// complete.
async fn run_batch_hooks(
    hooks: &[BatchHook],
    outer: &Parts,
    plan: &mut Plan,
) -> Result<(), Problem> {
    plan.complete_all();
    let ops: Option<Vec<_>> = plan
        .ops
        .iter()
        .zip(&plan.ids)
        .enumerate()
        .map(|(index, (op, id))| Some(OpView::new(index, id, op.request.as_ref()?)))
        .collect();
    // Every op still holds its request until the engine starts it. Were one
    // missing, the hooks could not see the whole batch: refused, not shown in part.
    let Some(ops) = ops else {
        return Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the batch could not be shown to its hooks",
        ));
    };
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
