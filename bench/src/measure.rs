//! The latency, throughput and makespan figures, each against its baseline from the
//! same run.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::try_join_all;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::{Http1, Http2, Reply};
use crate::table::{Row, Value as Figure};
use crate::{BenchError, Framework, Plan};

/// The batch endpoint's path in the bench's configuration (the default).
pub(crate) const BATCH_PATH: &str = "/batch";
/// Batch sizes compared with the same GETs sent one by one.
const SIZES: [usize; 2] = [10, 50];
/// Clients sending at once in the throughput runs.
pub(crate) const CLIENTS: usize = 8;
/// Ops per batch in the throughput runs.
pub(crate) const THROUGHPUT_BATCH: usize = 10;
/// What each `/slow` op waits, in milliseconds.
const SLOW_MS: u64 = 20;
/// Independent slow ops in one batch, and the length of the dependent chain.
const FAN_OUT: usize = 20;
const CHAIN: usize = 5;
/// Makespan batches take tens of milliseconds each; this many are enough for a median.
const MAX_MAKESPAN_ROUNDS: usize = 10;

/// Every latency, throughput and makespan row for one framework's server at `addr`.
pub(crate) async fn all(
    framework: Framework,
    addr: SocketAddr,
    plan: Plan,
) -> Result<Vec<Row>, BenchError> {
    let mut h1 = Http1::connect(addr).await?;
    let h2 = Http2::connect(addr).await?;
    let mut rows = Vec::new();
    for n in SIZES {
        eprintln!("  {n} GETs: sequential, HTTP/2, batch");
        rows.extend(round_trips(framework, &mut h1, &h2, n, plan).await?);
    }
    eprintln!("  throughput");
    rows.push(throughput(framework, addr, plan).await?);
    eprintln!("  makespan");
    // A fresh connection: servers close keep-alive connections idle for as long as
    // the throughput runs took (actix after 5 s).
    h1.close().await;
    h2.close().await;
    let mut h1 = Http1::connect(addr).await?;
    rows.extend(makespan(framework, &mut h1, plan).await?);
    h1.close().await;
    Ok(rows)
}

/// A small GET: one item of the fixture's store.
pub(crate) fn item(i: usize) -> String {
    format!("/items/{}", i % 100 + 1)
}

/// A native batch of `n` GETs of [`item`]s: the batch most figures send.
pub(crate) fn gets(n: usize) -> Bytes {
    batch_of(n, |i| json!({ "url": item(i) }))
}

/// A native batch document of `n` ops built by `op`.
pub(crate) fn batch_of(n: usize, op: impl Fn(usize) -> Value) -> Bytes {
    let ops: Vec<Value> = (0..n).map(op).collect();
    Bytes::from(json!({ "ops": ops }).to_string())
}

/// Sends one batch and checks that it and every one of its `n` ops succeeded, so a
/// refused or failing batch never passes for a fast one.
pub(crate) async fn batch(h1: &mut Http1, body: &Bytes, n: usize) -> Result<Reply, BenchError> {
    let reply = batch_status(h1, body, n).await?;
    all_succeeded(&reply, n)?;
    Ok(reply)
}

/// Checks that `reply`, the answer to a native batch of `n` ops, holds `n` results,
/// each of them a success.
pub(crate) fn all_succeeded(reply: &Reply, n: usize) -> Result<(), BenchError> {
    let unexpected = |detail: String| BenchError::Unexpected {
        what: format!("a batch of {n}"),
        detail,
    };
    let document: Value = serde_json::from_slice(&reply.body)
        .map_err(|err| unexpected(format!("a body that is not JSON ({err})")))?;
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

/// Sends one batch and checks only its status, as the single GETs it is compared
/// with are checked: reading the results is the client's work either way.
async fn batch_status(h1: &mut Http1, body: &Bytes, n: usize) -> Result<Reply, BenchError> {
    let reply = h1
        .send(Method::POST, BATCH_PATH, Some(body.clone()))
        .await?;
    answered(reply, || format!("a batch of {n}"))
}

/// `reply` if it is a 200; otherwise its status and body, as an error about `what`.
pub(crate) fn answered(reply: Reply, what: impl FnOnce() -> String) -> Result<Reply, BenchError> {
    if reply.status == StatusCode::OK {
        return Ok(reply);
    }
    Err(BenchError::Unexpected {
        what: what(),
        detail: format!(
            "status {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ),
    })
}

pub(crate) fn expect_ok(reply: &Reply, what: &str) -> Result<(), BenchError> {
    if reply.status == StatusCode::OK {
        return Ok(());
    }
    Err(BenchError::Unexpected {
        what: what.to_owned(),
        detail: format!("status {}", reply.status),
    })
}

/// `n` GETs of [`item`]s, one after the other on `h1`.
async fn sequential(h1: &mut Http1, n: usize) -> Result<(), BenchError> {
    for i in 0..n {
        let reply = h1.send(Method::GET, &item(i), None).await?;
        expect_ok(&reply, "GET on HTTP/1.1")?;
    }
    Ok(())
}

async fn multiplexed(h2: &Http2, n: usize) -> Result<(), BenchError> {
    let urls: Vec<String> = (0..n).map(item).collect();
    let replies = try_join_all(urls.iter().map(|url| h2.get(url))).await?;
    replies
        .iter()
        .try_for_each(|reply| expect_ok(reply, "GET on HTTP/2"))
}

/// One untimed request before each timed one, so every figure starts from a server
/// that is awake: on this VM a server idle for a few milliseconds parks its threads,
/// and waking a parked vCPU costs hundreds of microseconds, which would be charged
/// to whichever figure happens to come after a pause.
pub(crate) async fn wake(h1: &mut Http1) -> Result<(), BenchError> {
    let reply = h1.send(Method::GET, "/health", None).await?;
    expect_ok(&reply, "GET /health")
}

/// The median of `samples`.
pub(crate) fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// N GETs sequentially on HTTP/1.1, concurrently on HTTP/2, and as one batch.
///
/// Sequential and batched requests take turns within each round, so drift on a
/// shared machine hits both alike. HTTP/2 rounds run on their own: on the hyper-served
/// fixtures (axum, warp) each one ends in a ~40 ms stall (see BENCHMARKS.md), after
/// which the next figure would pay for waking a parked server.
async fn round_trips(
    framework: Framework,
    h1: &mut Http1,
    h2: &Http2,
    n: usize,
    plan: Plan,
) -> Result<Vec<Row>, BenchError> {
    let body = gets(n);
    batch(h1, &body, n).await?;
    let (mut one_by_one, mut on_h2, mut batched) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..plan.warmup + plan.iterations {
        wake(h1).await?;
        let started = Instant::now();
        sequential(h1, n).await?;
        let sequential_time = started.elapsed();
        wake(h1).await?;
        let started = Instant::now();
        batch_status(h1, &body, n).await?;
        let batch_time = started.elapsed();
        if round >= plan.warmup {
            one_by_one.push(sequential_time);
            batched.push(batch_time);
        }
    }
    for round in 0..plan.warmup + plan.iterations {
        wake(h1).await?;
        let started = Instant::now();
        multiplexed(h2, n).await?;
        if round >= plan.warmup {
            on_h2.push(started.elapsed());
        }
    }
    let (one_by_one, on_h2, batched) = (median(one_by_one), median(on_h2), median(batched));
    let sequential_name = format!("{n} GETs, HTTP/1.1 sequential keep-alive");
    let h2_name = format!("{n} GETs, HTTP/2 concurrent on 1 connection");
    Ok(vec![
        Row::faster(framework, &h2_name, on_h2, &sequential_name, one_by_one),
        Row::faster(
            framework,
            &format!("1 batch of {n} GETs"),
            batched,
            &sequential_name,
            one_by_one,
        ),
        Row::faster(
            framework,
            &format!("1 batch of {n} GETs"),
            batched,
            &h2_name,
            on_h2,
        ),
    ])
}

/// Ops per second from [`CLIENTS`] clients at once, each on its own keep-alive
/// connection, sending batches of [`THROUGHPUT_BATCH`] against sending the GETs
/// one by one.
async fn throughput(framework: Framework, addr: SocketAddr, plan: Plan) -> Result<Row, BenchError> {
    let body = gets(THROUGHPUT_BATCH);
    if plan.warmup > 0 {
        let warm = plan.throughput_for / 4;
        ops_per_second(addr, warm, None).await?;
        ops_per_second(addr, warm, Some(&body)).await?;
    }
    let individual = ops_per_second(addr, plan.throughput_for, None).await?;
    let batched = ops_per_second(addr, plan.throughput_for, Some(&body)).await?;
    Ok(Row::new(
        framework,
        &format!("{CLIENTS} clients, batches of {THROUGHPUT_BATCH}"),
        Figure::Rate(batched),
        &format!("{CLIENTS} clients, one GET per request"),
        Figure::Rate(individual),
        batched / individual.max(f64::MIN_POSITIVE),
        "× the ops/s",
    ))
}

async fn ops_per_second(
    addr: SocketAddr,
    duration: Duration,
    batch_body: Option<&Bytes>,
) -> Result<f64, BenchError> {
    let clients = try_join_all((0..CLIENTS).map(|_| Http1::connect(addr))).await?;
    let started = Instant::now();
    let deadline = started + duration;
    let counts = try_join_all(clients.into_iter().map(|mut h1| async move {
        let mut ops = 0usize;
        while Instant::now() < deadline {
            match batch_body {
                Some(body) => {
                    let reply = h1
                        .send(Method::POST, BATCH_PATH, Some(body.clone()))
                        .await?;
                    expect_ok(&reply, "a throughput batch")?;
                    ops += THROUGHPUT_BATCH;
                }
                None => {
                    let reply = h1.send(Method::GET, &item(ops), None).await?;
                    expect_ok(&reply, "a throughput GET")?;
                    ops += 1;
                }
            }
        }
        Ok::<_, BenchError>(ops)
    }))
    .await?;
    let ops: usize = counts.into_iter().sum();
    Ok(ops as f64 / started.elapsed().as_secs_f64())
}

/// How long a batch of slow ops takes against its critical path: [`FAN_OUT`]
/// independent ops (one wait) and a chain of [`CHAIN`] dependent ones (one wait each).
async fn makespan(
    framework: Framework,
    h1: &mut Http1,
    plan: Plan,
) -> Result<Vec<Row>, BenchError> {
    let slow = format!("/slow?ms={SLOW_MS}");
    let fan_out = batch_of(FAN_OUT, |i| json!({ "id": format!("s{i}"), "url": slow }));
    let chain = batch_of(CHAIN, |i| {
        let mut op = json!({ "id": format!("c{i}"), "url": slow });
        if i > 0 {
            op["depends_on"] = json!(format!("c{}", i - 1));
        }
        op
    });
    let rounds = plan.iterations.min(MAX_MAKESPAN_ROUNDS);
    let mut rows = Vec::new();
    // Each case with the waits on its critical path.
    for (body, n, what, waits) in [
        (
            &fan_out,
            FAN_OUT,
            format!("{FAN_OUT} independent /slow?ms={SLOW_MS}"),
            1,
        ),
        (
            &chain,
            CHAIN,
            format!("chain of {CHAIN} dependent /slow?ms={SLOW_MS}"),
            CHAIN as u64,
        ),
    ] {
        let floor = Duration::from_millis(SLOW_MS * waits);
        let mut times = Vec::new();
        for round in 0..plan.warmup.min(1) + rounds {
            let started = Instant::now();
            batch(h1, body, n).await?;
            if round >= plan.warmup.min(1) {
                times.push(started.elapsed());
            }
        }
        let took = median(times);
        rows.push(Row::new(
            framework,
            &format!("makespan, {what}"),
            Figure::Time(took),
            "critical path",
            Figure::Time(floor),
            took.as_secs_f64() / floor.as_secs_f64(),
            "× the critical path",
        ));
    }
    Ok(rows)
}
