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

use std::convert::Infallible;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, ServiceFactory as _, ServiceResponse};
use actix_web::test::TestRequest;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::json;
use tower::ServiceExt;

use crate::child::Served;
use crate::client::{Http1, Reply};
use crate::measure::{
    BATCH_PATH, all_succeeded, answered, batch_of, batch_status, expect_ok, item, median,
};
use crate::{BenchError, Framework, Plan, Setup};

/// Ops compared: the batch's size, and how many direct requests it stands for.
pub(crate) const OPS: usize = 50;
/// The `Host` every request carries, as a client's would (the batch's ops inherit it).
const HOST: &str = "localhost";

/// How the [`OPS`] GETs are sent for the CPU figures: one request each (`None`), or
/// in batches of the size given.
pub(crate) const WAYS: [Option<usize>; 3] = [None, Some(10), Some(OPS)];

/// One framework's figures, each per op.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cost {
    pub(crate) framework: Framework,
    /// In-process: a GET sent straight to the app.
    pub(crate) direct: Duration,
    /// In-process: an op of one batch of [`OPS`] through the adapter.
    pub(crate) batched: Duration,
    /// CPU time per op over a keep-alive connection, each of [`WAYS`].
    pub(crate) cpu: [Cpu; WAYS.len()],
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
    eprintln!("  in-process: {OPS} GETs straight to the app, 1 batch of {OPS}");
    let (direct, batched) = in_process(framework, runtime, plan)?;
    eprintln!("  CPU per op");
    let cpu = cpu_per_op(framework, runtime, plan)?;
    Ok(Cost {
        framework,
        direct,
        batched,
        cpu,
    })
}

/// The median time per direct request and per batched op, calling `framework`'s app
/// in-process: on `runtime` for the tower services, on an actix system (a
/// current-thread runtime with a local task set, as each actix worker runs) for actix.
fn in_process(
    framework: Framework,
    runtime: &tokio::runtime::Runtime,
    plan: Plan,
) -> Result<(Duration, Duration), BenchError> {
    let endpoint = batch_core::BatchEndpoint::new(crate::config_builder(Setup::Batches)?.build()?);
    let store = || std::sync::Arc::new(fixture::Store::default());
    match framework {
        Framework::Axum => {
            let app = batch_axum::with_batch(fixture::axum::app(store()), endpoint);
            runtime.block_on(split(&TowerApp(app), plan))
        }
        Framework::Warp => {
            let app = batch_warp::with_batch(fixture::warp::routes(store()), endpoint);
            runtime.block_on(split(&TowerApp(warp::service(app)), plan))
        }
        Framework::Tower => {
            let layer = batch_core::BatchLayer::from_endpoint(endpoint);
            let app = tower::Layer::layer(&layer, fixture::axum::app(store()));
            runtime.block_on(split(&TowerApp(app), plan))
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
            split(&ActixApp(service), plan).await
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
    /// `POST` of the native batch `body` to the batch endpoint.
    fn batch(&self, body: &Bytes) -> Result<Self::Request, BenchError>;
    /// Calls the app and reads the whole response.
    async fn call(&self, request: Self::Request) -> Result<Reply, BenchError>;
}

/// The median time per request of [`OPS`] direct GETs, and per op of one batch of
/// them, taking turns so that drift hits both alike.
async fn split(app: &impl InProcess, plan: Plan) -> Result<(Duration, Duration), BenchError> {
    let body = batch_of(OPS, |i| json!({ "url": item(i) }));
    let reply = answered(app.call(app.batch(&body)?).await?, || {
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
        let request = app.batch(&body)?;
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

    fn batch(&self, body: &Bytes) -> Result<Self::Request, BenchError> {
        Ok(crate::client::request(Method::POST, BATCH_PATH, true)
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

    fn batch(&self, body: &Bytes) -> Result<Self::Request, BenchError> {
        Ok(TestRequest::post()
            .uri(BATCH_PATH)
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

/// CPU time per op, the server's and the client's: [`OPS`] GETs each of [`WAYS`],
/// in turns on one keep-alive connection, with the server in a child process.
fn cpu_per_op(
    framework: Framework,
    runtime: &tokio::runtime::Runtime,
    plan: Plan,
) -> Result<[Cpu; WAYS.len()], BenchError> {
    let (served, addr) = Served::start(framework, Setup::Batches, plan.server_cpus)?;
    let bodies = WAYS.map(|way| way.map(|n| batch_of(n, |i| json!({ "url": item(i) }))));
    runtime.block_on(async {
        let mut h1 = Http1::connect(addr).await?;
        for (way, body) in WAYS.iter().zip(&bodies) {
            if let (Some(n), Some(body)) = (way, body) {
                crate::measure::batch(&mut h1, body, *n).await?;
            }
        }
        let mut totals = [Cpu::default(); WAYS.len()];
        for round in 0..plan.warmup + plan.cpu_rounds {
            for ((way, body), total) in WAYS.iter().zip(&bodies).zip(&mut totals) {
                let (server, client) = (served.cpu_time()?, crate::cpu::own()?);
                match (way, body) {
                    (Some(n), Some(body)) => {
                        for _ in 0..OPS / n {
                            batch_status(&mut h1, body, *n).await?;
                        }
                    }
                    _ => crate::measure::sequential(&mut h1, OPS).await?,
                }
                if round >= plan.warmup {
                    total.server += served.cpu_time()?.saturating_sub(server);
                    total.client += crate::cpu::own()?.saturating_sub(client);
                }
            }
        }
        h1.close().await;
        let ops = u32::try_from(plan.cpu_rounds * OPS)
            .unwrap_or(u32::MAX)
            .max(1);
        Ok(totals.map(|total| Cpu {
            server: total.server / ops,
            client: total.client / ops,
        }))
    })
}

/// An in-process call that failed: the figures would be meaningless.
fn failed(what: &str, err: impl std::fmt::Display) -> BenchError {
    BenchError::Unexpected {
        what: what.to_owned(),
        detail: err.to_string(),
    }
}
