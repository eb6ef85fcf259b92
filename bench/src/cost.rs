//! What an op costs the server, told apart from the network: the framework's own
//! cost per request against the engine's per op, both in-process, and the server's
//! CPU time per op for batches against single requests.
//!
//! **In-process.** The app a fixture server runs (its routes with the adapter's
//! batch endpoint mounted) is called without a socket, on one thread: [`OPS`] GETs
//! sent straight to it one after the other, and one batch of the same [`OPS`] GETs
//! through the adapter's batch endpoint. Each op of the batch passes through the
//! same routes as a direct GET, so the batch's time per op less the direct time per
//! request is the engine's share; what is left of the direct time is the framework's
//! (routing, extractors, the handler, the response). No parsing of HTTP, no socket,
//! no wake-up: only the work the server does for an op.
//!
//! **CPU time.** The fixture server runs in a child process; the same [`OPS`] GETs
//! are sent over HTTP/1.1 keep-alive one by one, as batches of 10 and as one batch
//! of [`OPS`], in turns, and the server's CPU time over each is read (its threads'
//! run time, user and system, from `/proc`; see [`crate::cpu`]), and the client's.
//! Divided by the ops, the server's is what an operator pays per op each way; unlike
//! a wall-clock ratio it does not move with how long the client and server wait to
//! be woken on a shared machine. With both on the same two vCPUs, the sum of the
//! two is what bounds the ops per second of many clients at once.
//!
//! **Per request: a body's cost, told from a batch's.** On the same connection,
//! then in-process on the same app, each of [`SENT`] is sent [`OPS`] times in
//! turns: a GET; a `POST /echo` with the body of a batch of
//! [`THROUGHPUT_BATCH`] GETs, read whole by an ordinary route of the app (a request
//! with a body that is no batch); a batch of 1; a batch of [`THROUGHPUT_BATCH`].
//! The server's and the client's CPU time per request less the in-process time per
//! request (the app's own work: routes, handler, engine) is what HTTP and the
//! runtime cost each request, both sides together. That cost for `POST /echo` less
//! that for a GET is what the framework charges a request for having a body, before
//! any batch: on the hyper servers, taking the body's one chunk from hyper's channel
//! wakes the connection task while it runs (hyper's receiver wakes the sender's
//! last waker), so tokio's multi-thread scheduler requeues it as a yield and wakes
//! an idle worker, which finds nothing to do and parks again. A batch of
//! [`THROUGHPUT_BATCH`]'s cost less `POST /echo`'s is what is left to the batch
//! endpoint's side of HTTP (its reading of the body and writing of the answer).
//! With the client and the server on the same two vCPUs, the ops per second of
//! [`CLIENTS`] clients go as the inverse of both sides' CPU per op: the table gives
//! the ceiling that puts on batches of [`THROUGHPUT_BATCH`] against single GETs,
//! and the ceiling if a request with a body cost HTTP no more than a GET does.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, ServiceFactory as _, ServiceResponse};
use actix_web::test::TestRequest;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;

use crate::child::Served;
use crate::client::{Http1, Reply};
#[cfg(doc)]
use crate::measure::CLIENTS;
use crate::measure::{
    BATCH_PATH, THROUGHPUT_BATCH, all_succeeded, answered, expect_ok, gets, item, median,
};
use crate::{BenchError, Framework, Plan, Setup};

/// Ops compared: the batch's size, and how many direct requests it stands for.
pub(crate) const OPS: usize = 50;
/// The `Host` every request carries, as a client's would (the batch's ops inherit it).
const HOST: &str = "localhost";

/// How the [`OPS`] GETs are sent for the CPU figures: one request each (`None`), or
/// in batches of the size given.
pub(crate) const WAYS: [Option<usize>; 3] = [None, Some(10), Some(OPS)];

/// A request of the per-request figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// `GET /items/{i}`: the single request batches are compared with.
    Get,
    /// `POST /echo` with the body of a batch of [`THROUGHPUT_BATCH`] GETs: the same
    /// body, read whole by an ordinary route of the app, with no batch.
    Echo,
    /// A batch of this many GETs.
    Batch(usize),
}

/// The per-request figures' requests, in the order of their turns and columns.
pub(crate) const SENT: [Sent; 4] = [
    Sent::Get,
    Sent::Echo,
    Sent::Batch(1),
    Sent::Batch(THROUGHPUT_BATCH),
];

/// The echo route the per-request figures post a batch's body to.
const ECHO_PATH: &str = "/echo";

impl Sent {
    /// What the request is called in the table.
    pub(crate) fn name(self) -> String {
        match self {
            Sent::Get => "GET".to_owned(),
            Sent::Echo => format!("POST {ECHO_PATH}"),
            Sent::Batch(n) => format!("batch of {n}"),
        }
    }

    /// The request's path, a GET's for its `i`th sending.
    fn path(self, i: usize) -> String {
        match self {
            Sent::Get => item(i),
            Sent::Echo => ECHO_PATH.to_owned(),
            Sent::Batch(_) => BATCH_PATH.to_owned(),
        }
    }

    /// The request's body, if it has one; built once, before any clock starts.
    fn body(self) -> Option<Bytes> {
        match self {
            Sent::Get => None,
            Sent::Echo => Some(gets(THROUGHPUT_BATCH)),
            Sent::Batch(n) => Some(gets(n)),
        }
    }
}

/// One framework's figures: per op, and per request for each of [`SENT`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cost {
    pub(crate) framework: Framework,
    /// In-process: a GET sent straight to the app.
    pub(crate) direct: Duration,
    /// In-process: an op of one batch of [`OPS`] through the adapter.
    pub(crate) batched: Duration,
    /// CPU time per op over a keep-alive connection, each of [`WAYS`].
    pub(crate) cpu: [Cpu; WAYS.len()],
    /// Each of [`SENT`], per request.
    pub(crate) requests: [PerRequest; SENT.len()],
}

impl Cost {
    /// The per-request figures of `sent`, one of [`SENT`].
    pub(crate) fn of(&self, sent: Sent) -> PerRequest {
        SENT.iter()
            .position(|&each| each == sent)
            .and_then(|at| self.requests.get(at).copied())
            .unwrap_or_default()
    }

    /// What HTTP and the runtime charge a request for its body, server and client
    /// together: `POST /echo`'s cost less a GET's, each less the app's own work.
    pub(crate) fn body_cost(&self) -> Duration {
        let (echo, get) = (self.of(Sent::Echo).http(), self.of(Sent::Get).http());
        echo.saturating_sub(get)
    }

    /// How many times the ops per second of single GETs batches of
    /// [`THROUGHPUT_BATCH`] reach at most, when the CPU time of both sides on the
    /// same vCPUs is all that bounds them (as with [`CLIENTS`] clients on two), were
    /// each batch to cost `spared` less.
    pub(crate) fn ceiling(&self, spared: Duration) -> f64 {
        let total = |request: PerRequest| request.cpu.server + request.cpu.client;
        let single = total(self.of(Sent::Get)).as_secs_f64();
        let batch = total(self.of(Sent::Batch(THROUGHPUT_BATCH))).saturating_sub(spared);
        THROUGHPUT_BATCH as f64 * single / batch.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// What one request costs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PerRequest {
    /// In-process: the app's own work for it, no HTTP and no socket.
    pub(crate) in_process: Duration,
    /// CPU time over a keep-alive connection.
    pub(crate) cpu: Cpu,
}

impl PerRequest {
    /// What HTTP and the runtime cost it, server and client together: both sides'
    /// CPU time less the app's own work.
    pub(crate) fn http(self) -> Duration {
        (self.cpu.server + self.cpu.client).saturating_sub(self.in_process)
    }
}

/// CPU time per op.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cpu {
    pub(crate) server: Duration,
    pub(crate) client: Duration,
}

/// Both figures for `framework`: the in-process split, then the server's CPU time.
pub(crate) fn measure(
    framework: Framework,
    runtime: &tokio::runtime::Runtime,
    plan: Plan,
) -> Result<Cost, BenchError> {
    eprintln!(
        "  in-process: {OPS} GETs straight to the app, 1 batch of {OPS}; per request: {}",
        SENT.map(Sent::name).join(", ")
    );
    let (direct, batched, in_process) = in_process(framework, runtime, plan)?;
    eprintln!("  CPU per op, per request");
    let (cpu, per_request) = cpu_time(framework, runtime, plan)?;
    let mut requests = [PerRequest::default(); SENT.len()];
    for ((request, in_process), cpu) in requests.iter_mut().zip(in_process).zip(per_request) {
        *request = PerRequest { in_process, cpu };
    }
    Ok(Cost {
        framework,
        direct,
        batched,
        cpu,
        requests,
    })
}

/// The in-process figures: a direct GET and a batched op (see [`split`]), and each
/// of [`SENT`] per request.
type InProcessFigures = (Duration, Duration, [Duration; SENT.len()]);

/// Both in-process measurements on `app`, one after the other.
async fn in_process_all(app: &impl InProcess, plan: Plan) -> Result<InProcessFigures, BenchError> {
    let (direct, batched) = split(app, plan).await?;
    Ok((direct, batched, per_request(app, plan).await?))
}

/// The in-process figures, calling `framework`'s app: on `runtime` for the tower
/// services, on an actix system (a current-thread runtime with a local task set, as
/// each actix worker runs) for actix.
fn in_process(
    framework: Framework,
    runtime: &tokio::runtime::Runtime,
    plan: Plan,
) -> Result<InProcessFigures, BenchError> {
    let endpoint = batch_core::BatchEndpoint::new(crate::config_builder(Setup::Batches)?.build()?);
    let store = || std::sync::Arc::new(fixture::Store::default());
    match framework {
        Framework::Axum => {
            let app = batch_axum::with_batch(fixture::axum::app(store()), endpoint);
            runtime.block_on(in_process_all(&TowerApp(app), plan))
        }
        Framework::Warp => {
            let app = batch_warp::with_batch(fixture::warp::routes(store()), endpoint);
            runtime.block_on(in_process_all(&TowerApp(warp::service(app)), plan))
        }
        Framework::Tower => {
            let layer = batch_core::BatchLayer::from_endpoint(endpoint);
            let app = tower::Layer::layer(&layer, fixture::axum::app(store()));
            runtime.block_on(in_process_all(&TowerApp(app), plan))
        }
        Framework::Actix => actix_web::rt::System::new().block_on(async {
            let app = fixture::actix::app(
                actix_web::web::Data::new(fixture::Store::default()),
                endpoint.clone(),
                None,
            );
            // What `actix_web::test::init_service` does, without its panic.
            let service = batch_actix::with_batch(app, endpoint)
                .new_service(AppConfig::default())
                .await
                .map_err(|()| failed("starting the actix app", "its factory failed"))?;
            in_process_all(&ActixApp(service), plan).await
        }),
    }
}

/// An app called in-process, as its server calls it with a request it has read.
trait InProcess {
    /// A request as the app takes it; built before the clock starts, as a server
    /// has it before calling the app.
    type Request;
    /// `GET path`.
    fn get(&self, path: &str) -> Result<Self::Request, BenchError>;
    /// `POST path` with the JSON `body`.
    fn post(&self, path: &str, body: &Bytes) -> Result<Self::Request, BenchError>;
    /// Calls the app and reads the whole response.
    async fn call(&self, request: Self::Request) -> Result<Reply, BenchError>;
}

/// The median time per request of [`OPS`] direct GETs, and per op of one batch of
/// them, taking turns so that drift hits both alike.
async fn split(app: &impl InProcess, plan: Plan) -> Result<(Duration, Duration), BenchError> {
    let body = gets(OPS);
    let reply = answered(app.call(app.post(BATCH_PATH, &body)?).await?, || {
        format!("an in-process batch of {OPS}")
    })?;
    all_succeeded(&reply, OPS)?;
    let (mut direct, mut batched) = (Vec::new(), Vec::new());
    for round in 0..plan.warmup + plan.in_process_rounds {
        let requests = (0..OPS)
            .map(|i| app.get(&item(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let started = Instant::now();
        for request in requests {
            expect_ok(&app.call(request).await?, "an in-process GET")?;
        }
        let direct_time = started.elapsed();
        let request = app.post(BATCH_PATH, &body)?;
        let started = Instant::now();
        expect_ok(&app.call(request).await?, "an in-process batch")?;
        if round >= plan.warmup {
            direct.push(direct_time);
            batched.push(started.elapsed());
        }
    }
    let per_op = |samples| median(samples) / OPS as u32;
    Ok((per_op(direct), per_op(batched)))
}

/// The median time per request of each of [`SENT`] in-process: [`OPS`] of each in
/// turns, each turn's requests built before the clock starts.
async fn per_request(
    app: &impl InProcess,
    plan: Plan,
) -> Result<[Duration; SENT.len()], BenchError> {
    let bodies = SENT.map(Sent::body);
    let build = |sent: Sent, body: &Option<Bytes>, i| match body {
        None => app.get(&sent.path(i)),
        Some(body) => app.post(&sent.path(i), body),
    };
    for (sent, body) in SENT.into_iter().zip(&bodies) {
        let reply = answered(app.call(build(sent, body, 0)?).await?, || {
            format!("an in-process {}", sent.name())
        })?;
        if let Sent::Batch(n) = sent {
            all_succeeded(&reply, n)?;
        }
    }
    let mut samples = SENT.map(|_| Vec::new());
    for round in 0..plan.warmup + plan.cpu_rounds {
        for ((sent, body), samples) in SENT.into_iter().zip(&bodies).zip(&mut samples) {
            let requests = (0..OPS)
                .map(|i| build(sent, body, i))
                .collect::<Result<Vec<_>, _>>()?;
            let started = Instant::now();
            for request in requests {
                expect_ok(&app.call(request).await?, "an in-process request")?;
            }
            if round >= plan.warmup {
                samples.push(started.elapsed());
            }
        }
    }
    Ok(samples.map(|samples| median(samples) / OPS as u32))
}

/// A tower service: axum's `Router`, `warp::service`, the batch layer.
struct TowerApp<S>(S);

impl<S, B> InProcess for TowerApp<S>
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible> + Clone,
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    type Request = Request<Full<Bytes>>;

    fn get(&self, path: &str) -> Result<Self::Request, BenchError> {
        Ok(crate::client::request(Method::GET, path, false)
            .header(header::HOST, HOST)
            .body(Full::default())?)
    }

    fn post(&self, path: &str, body: &Bytes) -> Result<Self::Request, BenchError> {
        Ok(crate::client::request(Method::POST, path, true)
            .header(header::HOST, HOST)
            .body(Full::new(body.clone()))?)
    }

    async fn call(&self, request: Self::Request) -> Result<Reply, BenchError> {
        let Ok(response) = self.0.clone().oneshot(request).await;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| failed("reading an in-process response", err))?
            .to_bytes();
        Ok(Reply { status, body })
    }
}

/// An actix-web app service, as an actix server makes it for each worker.
struct ActixApp<S>(S);

impl<S, B> InProcess for ActixApp<S>
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: MessageBody,
{
    type Request = actix_http::Request;

    fn get(&self, path: &str) -> Result<Self::Request, BenchError> {
        Ok(TestRequest::get()
            .uri(path)
            .insert_header((header::HOST.as_str(), HOST))
            .to_request())
    }

    fn post(&self, path: &str, body: &Bytes) -> Result<Self::Request, BenchError> {
        Ok(TestRequest::post()
            .uri(path)
            .insert_header((header::HOST.as_str(), HOST))
            .insert_header((header::CONTENT_TYPE.as_str(), "application/json"))
            .set_payload(body.clone())
            .to_request())
    }

    async fn call(&self, request: Self::Request) -> Result<Reply, BenchError> {
        let response = actix_web::dev::Service::call(&self.0, request)
            .await
            .map_err(|err| failed("an in-process actix request", err))?;
        // actix-web 4 speaks the `http` 0.2 types; the bench the 1.x ones.
        let status = StatusCode::from_u16(response.status().as_u16())
            .map_err(|err| failed("an in-process actix status", err))?;
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .map_err(|err| {
                let err: Box<dyn std::error::Error> = err.into();
                failed("reading an in-process actix response", err)
            })?;
        Ok(Reply { status, body })
    }
}

/// The server's CPU figures, on one child process and one keep-alive connection:
/// per op each of [`WAYS`], then per request each of [`SENT`].
fn cpu_time(
    framework: Framework,
    runtime: &tokio::runtime::Runtime,
    plan: Plan,
) -> Result<([Cpu; WAYS.len()], [Cpu; SENT.len()]), BenchError> {
    let (served, addr) = Served::start(framework, Setup::Batches, plan.server_cpus)?;
    runtime.block_on(async {
        let mut h1 = Http1::connect(addr).await?;
        let per_op = cpu_per_op(&served, &mut h1, plan).await?;
        let per_request = cpu_per_request(&served, &mut h1, plan).await?;
        h1.close().await;
        Ok((per_op, per_request))
    })
}

/// What a turn of the CPU figures sends: `times` requests of `sent`, with its body
/// built before the clock starts.
#[derive(Debug, Clone)]
struct Turn {
    sent: Sent,
    body: Option<Bytes>,
    times: usize,
}

impl Turn {
    fn new(sent: Sent, times: usize) -> Self {
        let body = sent.body();
        Self { sent, body, times }
    }
}

/// CPU time per op, the server's and the client's: [`OPS`] GETs each of [`WAYS`],
/// in turns.
async fn cpu_per_op(
    served: &Served,
    h1: &mut Http1,
    plan: Plan,
) -> Result<[Cpu; WAYS.len()], BenchError> {
    let turns = WAYS.map(|way| match way {
        Some(n) => Turn::new(Sent::Batch(n), OPS / n),
        None => Turn::new(Sent::Get, OPS),
    });
    for turn in &turns {
        if let (Sent::Batch(n), Some(body)) = (turn.sent, &turn.body) {
            crate::measure::batch(h1, body, n).await?;
        }
    }
    cpu_per_turn(served, h1, turns, plan).await
}

/// CPU time per request, the server's and the client's: [`OPS`] of each of
/// [`SENT`], in turns.
async fn cpu_per_request(
    served: &Served,
    h1: &mut Http1,
    plan: Plan,
) -> Result<[Cpu; SENT.len()], BenchError> {
    let turns = SENT.map(|sent| Turn::new(sent, OPS));
    cpu_per_turn(served, h1, turns, plan).await
}

/// The server's and the client's CPU time over each of `turns`, taken in turns on
/// `h1`, summed over the rounds and divided by [`OPS`] a round: per op when each
/// turn carries [`OPS`] ops, per request when it sends [`OPS`] requests.
async fn cpu_per_turn<const N: usize>(
    served: &Served,
    h1: &mut Http1,
    turns: [Turn; N],
    plan: Plan,
) -> Result<[Cpu; N], BenchError> {
    let mut totals = [Cpu::default(); N];
    for round in 0..plan.warmup + plan.cpu_rounds {
        for (turn, total) in turns.iter().zip(&mut totals) {
            let (server, client) = (served.cpu_time()?, crate::cpu::own()?);
            for i in 0..turn.times {
                // Only the status is checked, as a single GET's is: reading the
                // results is the client's work either way.
                let path = turn.sent.path(i);
                let reply = match &turn.body {
                    None => h1.send(Method::GET, &path, None).await?,
                    Some(body) => h1.send(Method::POST, &path, Some(body.clone())).await?,
                };
                answered(reply, || turn.sent.name())?;
            }
            if round >= plan.warmup {
                total.server += served.cpu_time()?.saturating_sub(server);
                total.client += crate::cpu::own()?.saturating_sub(client);
            }
        }
    }
    let units = u32::try_from(plan.cpu_rounds * OPS)
        .unwrap_or(u32::MAX)
        .max(1);
    Ok(totals.map(|total| Cpu {
        server: total.server / units,
        client: total.client / units,
    }))
}

/// An in-process call that failed: the figures would be meaningless.
fn failed(what: &str, err: impl std::fmt::Display) -> BenchError {
    BenchError::Unexpected {
        what: what.to_owned(),
        detail: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(us: u64) -> Duration {
        Duration::from_micros(us)
    }

    /// A cost whose requests took `server`, `client` and `in_process` µs each, in
    /// the order of [`SENT`].
    fn cost(server: [u64; 4], client: [u64; 4], in_process: [u64; 4]) -> Cost {
        let mut requests = [PerRequest::default(); SENT.len()];
        for (at, request) in requests.iter_mut().enumerate() {
            *request = PerRequest {
                in_process: micros(in_process[at]),
                cpu: Cpu {
                    server: micros(server[at]),
                    client: micros(client[at]),
                },
            };
        }
        Cost {
            framework: Framework::Axum,
            direct: Duration::ZERO,
            batched: Duration::ZERO,
            cpu: [Cpu::default(); WAYS.len()],
            requests,
        }
    }

    #[test]
    fn a_bodys_cost_leaves_the_apps_own_work_out() {
        // GET: 6 + 6 − 1 = 11 µs of HTTP; POST /echo: 13 + 7 − 4 = 16 µs.
        let cost = cost([6, 13, 10, 26], [6, 7, 7, 8], [1, 4, 3, 18]);
        assert_eq!(cost.body_cost(), micros(5));
        assert_eq!(cost.of(Sent::Batch(1)).http(), micros(14));
    }

    #[test]
    fn the_ceiling_is_both_sides_cpu_per_op_single_against_batched() {
        // 10 ops of 12 µs each against one batch of 34 µs.
        let cost = cost([6, 13, 10, 26], [6, 7, 7, 8], [1, 4, 3, 18]);
        assert!((cost.ceiling(Duration::ZERO) - 120.0 / 34.0).abs() < 1e-9);
        assert!((cost.ceiling(micros(4)) - 4.0).abs() < 1e-9);
    }
}
