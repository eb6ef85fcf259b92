//! Streamed answers against buffered ones: how soon a client has its first result
//! when one op is fast and the others slow (on each framework's fixture), and the
//! server's peak memory for a batch of 1,000 ops answering 100 KiB each (on the
//! engine over an executor whose ops answer that much, in a child process).

use std::net::SocketAddr;
use std::time::Instant;

use batch_core::{ExecuteError, Executor};
use bytes::Bytes;
use fixture::Server;
use http::{Method, Request, Response, header};
use serde_json::{Value, json};

use crate::child::Served;
use crate::client::{Http1, Reply};
use crate::measure::{batch_of, median};
use crate::table::{Row, Value as Figure};
use crate::{BenchError, Framework, Plan, Setup};

/// The media type that asks for a streamed answer.
const NDJSON: &str = "application/x-ndjson";

/// The slow ops of the first-result figure, and how long each takes.
const SLOW_OPS: usize = 9;
const SLOW_MS: u64 = 300;

/// Ops in the memory figure's batch, and the body each answers.
const OPS: usize = 1000;
const OP_BODY: usize = 100 * 1024;

/// The time to the first result of a batch of one fast op and [`SLOW_OPS`] ops of
/// `/slow?ms=`[`SLOW_MS`], streamed (the fast op's line), against the whole
/// buffered answer of the same batch.
pub(crate) async fn first_result(
    framework: Framework,
    addr: SocketAddr,
    plan: Plan,
) -> Result<Vec<Row>, BenchError> {
    let body = batch_of(SLOW_OPS + 1, |i| match i {
        0 => json!({"url": "/health"}),
        _ => json!({"url": format!("/slow?ms={SLOW_MS}")}),
    });
    // Each sample waits for the slow ops: a few suffice for a median.
    let iterations = plan.iterations.min(10);
    let mut h1 = Http1::connect(addr).await?;
    let (mut streamed, mut buffered) = (Vec::new(), Vec::new());
    for round in 0..plan.warmup.min(2) + iterations {
        let (first, reply) = h1
            .send_timing_first_line(
                Method::POST,
                "/batch",
                Some(body.clone()),
                &[("accept", NDJSON)],
            )
            .await?;
        check_lines(&reply, SLOW_OPS + 1)?;
        let started = Instant::now();
        let whole = h1.send(Method::POST, "/batch", Some(body.clone())).await?;
        let took = started.elapsed();
        check_buffered(&whole, SLOW_OPS + 1)?;
        if round >= plan.warmup.min(2) {
            streamed.push(first);
            buffered.push(took);
        }
    }
    h1.close().await;
    Ok(vec![Row::faster(
        framework,
        &format!(
            "time to the first result, 1 fast op + {SLOW_OPS} × /slow?ms={SLOW_MS}, streamed \
             (accept: {NDJSON})"
        ),
        median(streamed),
        "whole buffered answer",
        median(buffered),
    )])
}

/// The server's RSS growth (idle to peak) while it answers one batch of [`OPS`] ops
/// of [`OP_BODY`] bytes each, streamed and read as it comes, against the same batch
/// buffered; each in a fresh server, so each peak is its own.
pub(crate) fn memory(
    runtime: &tokio::runtime::Runtime,
    plan: Plan,
) -> Result<Vec<Row>, BenchError> {
    let (buffered_idle, buffered_peak) = peak(runtime, plan, false)?;
    let (streamed_idle, streamed_peak) = peak(runtime, plan, true)?;
    let buffered = buffered_peak.saturating_sub(buffered_idle);
    let streamed = streamed_peak.saturating_sub(streamed_idle);
    let row = Row::new(
        Framework::Axum,
        &format!(
            "server RSS growth, one batch of {OPS} ops × 100 KiB answers, streamed \
             (idle {} → peak {}; buffered: {} → {})",
            Figure::Bytes(streamed_idle),
            Figure::Bytes(streamed_peak),
            Figure::Bytes(buffered_idle),
            Figure::Bytes(buffered_peak),
        ),
        Figure::Bytes(streamed),
        "buffered answer",
        Figure::Bytes(buffered),
        buffered as f64 / streamed.max(1) as f64,
        "× less memory",
    );
    Ok(vec![row.on("engine")])
}

/// Idle and peak RSS of a fresh payload server answering one large batch.
fn peak(
    runtime: &tokio::runtime::Runtime,
    plan: Plan,
    streamed: bool,
) -> Result<(u64, u64), BenchError> {
    let (served, addr) = Served::start(Framework::Axum, Setup::Payload, plan.server_cpus)?;
    let warm = batch_of(10, |_| json!({"url": "/payload"}));
    let large = batch_of(OPS, |_| json!({"url": "/payload"}));
    let accept: &[(&str, &str)] = if streamed { &[("accept", NDJSON)] } else { &[] };
    let figures = runtime.block_on(async {
        let mut h1 = Http1::connect(addr).await?;
        for _ in 0..3 {
            let (_, reply) = h1
                .send_timing_first_line(Method::POST, "/batch", Some(warm.clone()), accept)
                .await?;
            check(&reply, 10, streamed)?;
        }
        let idle = served.memory("VmRSS")?;
        let (_, reply) = h1
            .send_timing_first_line(Method::POST, "/batch", Some(large.clone()), accept)
            .await?;
        check(&reply, OPS, streamed)?;
        drop(reply);
        let peak = served.memory("VmHWM")?;
        h1.close().await;
        Ok::<_, BenchError>((idle, peak))
    })?;
    drop(served);
    Ok(figures)
}

fn check(reply: &Reply, n: usize, streamed: bool) -> Result<(), BenchError> {
    if streamed {
        check_lines(reply, n)
    } else {
        check_buffered(reply, n)
    }
}

/// Checks a streamed answer: `n` results, then `done` with none failed.
fn check_lines(reply: &Reply, n: usize) -> Result<(), BenchError> {
    let unexpected = |detail: String| BenchError::Unexpected {
        what: format!("a streamed batch of {n}"),
        detail,
    };
    if !reply.status.is_success() {
        return Err(unexpected(format!("status {}", reply.status)));
    }
    let text = std::str::from_utf8(&reply.body).map_err(|err| unexpected(err.to_string()))?;
    let last = text.lines().last().unwrap_or_default();
    let done: Value = serde_json::from_str(last).map_err(|err| unexpected(err.to_string()))?;
    let lines = text.lines().count();
    if lines != n + 1 || done != json!({"done": true, "ops": n, "failed": 0}) {
        return Err(unexpected(format!("{lines} lines ending {last}")));
    }
    Ok(())
}

/// Checks a buffered answer: `n` results, all 200.
fn check_buffered(reply: &Reply, n: usize) -> Result<(), BenchError> {
    let unexpected = |detail: String| BenchError::Unexpected {
        what: format!("a buffered batch of {n}"),
        detail,
    };
    let document: Value =
        serde_json::from_slice(&reply.body).map_err(|err| unexpected(err.to_string()))?;
    let results = document["results"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let ok = results.iter().filter(|r| r["status"] == 200).count();
    if results.len() != n || ok != n {
        return Err(unexpected(format!(
            "{ok} of {} results succeeded",
            results.len()
        )));
    }
    Ok(())
}

/// Answers every op with a JSON string of [`OP_BODY`] bytes, made afresh as a
/// handler's answer is, after yielding once as a handler that waits on I/O does.
struct Payload;

impl Executor for Payload {
    async fn execute(
        &self,
        _request: Request<Bytes>,
        max_response_body: usize,
    ) -> Result<Response<Bytes>, ExecuteError> {
        tokio::task::yield_now().await;
        if OP_BODY > max_response_body {
            return Err(ExecuteError::ResponseTooLarge {
                limit: max_response_body,
            });
        }
        let mut body = vec![b'x'; OP_BODY];
        body[0] = b'"';
        body[OP_BODY - 1] = b'"';
        let mut response = Response::new(Bytes::from(body));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }
}

/// The server of the memory figure: the engine over [`Payload`], taking batches of
/// [`OPS`] ops and holding a buffered answer of all of them (past the default
/// whole-batch cap of 16 MiB, which would answer most of them 507).
pub(crate) fn payload_server() -> Result<Server, BenchError> {
    let config = crate::config_builder(Setup::Payload)?
        .max_ops(OPS)
        .max_batch_response(1 << 30)
        .build()?;
    fixture::serve_executor(Payload, config)
        .map_err(|err| BenchError::Io("starting the payload server".into(), err))
}
