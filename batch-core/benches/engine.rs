//! What the engine costs per op: a whole batch (decode, validate, plan, run, encode)
//! through [`BatchEndpoint::handle`] next to the same ops called directly on the
//! executor, for batches of 1, 10, 50 and 1000 trivial ops.
//!
//! ```text
//! cargo bench -p batch-core --bench engine            # full run
//! cargo bench -p batch-core --bench engine -- --test  # each bench once (CI smoke)
//! BATCH_BENCH_METRICS=1 cargo bench -p batch-core --bench engine  # metrics recorded
//! ```
//!
//! Every group reports throughput in ops, so criterion's `thrpt` is ops per second;
//! the engine's overhead per op is `(batch time - direct time) / N`. The direct
//! requests carry the headers the batch's ops inherit (a client sending them one by
//! one sends those headers with each), so the difference is the engine's work. The `shape`
//! group holds batches of 50 and 1000 built to expose a quadratic step: an N-1 long
//! `depends_on` chain (planning, and the engine's release of dependents) and ops that
//! each set 20 headers under an outer request with 20 inherited ones (header merging
//! and encoding). Per op, the batch of 1000 should cost what the batch of 50 does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use batch_core::{BatchEndpoint, Config, ExecuteError, Executor};
use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use http::{Method, Request, Response, header};
use http_body_util::Full;
use serde_json::{Value, json};

/// The batch sizes compared.
const SIZES: [usize; 4] = [1, 10, 50, 1000];
/// The sizes of the shaped batches: per-op time equal at both means linear growth.
const SHAPE_SIZES: [usize; 2] = [50, 1000];

/// An application that answers every op at once with a tiny JSON body, so what is
/// measured is the engine, not the app.
struct Memory;

impl Executor for Memory {
    async fn execute(
        &self,
        _request: Request<Bytes>,
        _max_response_body: usize,
    ) -> Result<Response<Bytes>, ExecuteError> {
        let mut response = Response::new(Bytes::from_static(br#"{"ok":true}"#));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }
}

/// A configuration that admits the largest batch here; everything else default.
fn config() -> Config {
    Config::builder()
        .max_ops(1000)
        .max_body(16 << 20)
        .build()
        .expect("a valid configuration")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// `n` GETs of `/items/{i}`, each shaped by `op`: the same bytes as the whole
/// `{"ops": [...]}` value written at once.
///
/// Written op by op, so that no tree of the whole batch is freed just before the
/// first batch runs: glibc parks that many small blocks, and the engine's first
/// allocation of 1 KiB or more would merge them all (~30,000 instructions at
/// N = 50), a cost of this setup counted as the engine's.
fn batch_body(n: usize, op: impl Fn(usize) -> Value) -> Bytes {
    let mut body = String::from(r#"{"ops":["#);
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&op(i).to_string());
    }
    body.push_str("]}");
    Bytes::from(body)
}

fn plain_op(i: usize) -> Value {
    json!({ "id": format!("op{i}"), "url": format!("/items/{i}") })
}

/// The outer request as an adapter hands it to the engine.
fn outer(body: &Bytes, extra_headers: usize) -> Request<Full<Bytes>> {
    let mut request = Request::post("/batch")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer bench")
        .header(header::HOST, "127.0.0.1")
        .body(Full::new(body.clone()))
        .unwrap();
    for h in 0..extra_headers {
        request.headers_mut().insert(
            http::HeaderName::try_from(format!("x-outer-{h}")).unwrap(),
            http::HeaderValue::from_static("inherited"),
        );
    }
    request
}

/// Checks once, outside any timing and only for a bench that runs, that the batch
/// runs every op successfully, so a refused batch can never pass for a fast one.
fn check(rt: &tokio::runtime::Runtime, endpoint: &BatchEndpoint, body: &Bytes, n: usize) {
    let response = rt.block_on(endpoint.handle(&Memory, outer(body, 0)));
    assert_eq!(response.status(), 200, "{:?}", response.body());
    let document: Value = serde_json::from_slice(response.body()).unwrap();
    let results = document["results"].as_array().unwrap();
    assert_eq!(results.len(), n);
    assert!(results.iter().all(|r| r["status"] == 200), "{document}");
}

fn batch_vs_direct(c: &mut Criterion) {
    let rt = runtime();
    let endpoint = BatchEndpoint::new(config());
    let mut group = c.benchmark_group("ops");
    for n in SIZES {
        group.throughput(Throughput::Elements(n as u64));
        let body = batch_body(n, plain_op);
        group.bench_with_input(BenchmarkId::new("batch", n), &body, |b, body| {
            check(&rt, &endpoint, body, n);
            b.iter_batched(
                || outer(body, 0),
                |request| rt.block_on(endpoint.handle(&Memory, request)),
                BatchSize::SmallInput,
            );
        });
        // The same requests the engine hands the executor, headers included: what
        // the batch adds is decoding, checking, planning, running and encoding.
        // (Ops inherit every outer header here but the body's content type.)
        let mut inherited = outer(&body, 0).headers().clone();
        inherited.remove(header::CONTENT_TYPE);
        let urls: Vec<String> = (0..n).map(|i| format!("/items/{i}")).collect();
        group.bench_with_input(BenchmarkId::new("direct", n), &urls, |b, urls| {
            b.iter(|| {
                rt.block_on(async {
                    let mut responses = Vec::with_capacity(urls.len());
                    for url in urls {
                        let mut request = Request::builder()
                            .method(Method::GET)
                            .uri(url.as_str())
                            .body(Bytes::new())
                            .unwrap();
                        *request.headers_mut() = inherited.clone();
                        responses.push(Memory.execute(request, usize::MAX).await);
                    }
                    black_box(responses)
                })
            });
        });
    }
    group.finish();
}

fn shapes(c: &mut Criterion) {
    const HEADERS: usize = 20;
    let rt = runtime();
    let endpoint = BatchEndpoint::new(config());
    let mut group = c.benchmark_group("shape");
    for n in SHAPE_SIZES {
        group.throughput(Throughput::Elements(n as u64));
        let chain = batch_body(n, |i| {
            let mut op = plain_op(i);
            if i > 0 {
                op["depends_on"] = json!(format!("op{}", i - 1));
            }
            op
        });
        let headers = batch_body(n, |i| {
            let mut op = plain_op(i);
            let own: serde_json::Map<String, Value> = (0..HEADERS)
                .map(|h| (format!("x-op-{h}"), json!(format!("value-{i}-{h}"))))
                .collect();
            op["headers"] = Value::Object(own);
            op
        });
        for (name, body, outer_headers) in [("chain", &chain, 0), ("headers", &headers, HEADERS)] {
            group.bench_function(BenchmarkId::new(name, n), |b| {
                check(&rt, &endpoint, body, n);
                b.iter_batched(
                    || outer(body, outer_headers),
                    |request| rt.block_on(endpoint.handle(&Memory, request)),
                    BatchSize::SmallInput,
                );
            });
        }
    }
    group.finish();
}

fn main() {
    // With BATCH_BENCH_METRICS set, every batch records its metrics into a
    // Prometheus recorder; without it there is no recorder, and recording does nothing.
    if std::env::var_os("BATCH_BENCH_METRICS").is_some() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        metrics::set_global_recorder(recorder).expect("the only recorder");
    }
    let mut criterion = Criterion::default().configure_from_args();
    batch_vs_direct(&mut criterion);
    shapes(&mut criterion);
    criterion.final_summary();
}
