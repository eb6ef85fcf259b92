//! The Redis idempotency store between replicas, each an endpoint with a store of
//! its own on one Redis: a keyed batch sent to two replicas at once runs on one of
//! them, and a store built while Redis is away refuses keyed batches until Redis
//! is there, then takes them without a restart.
//!
//! These tests need `redis-server` (`$REDIS_URL`, or the binary to start one): run
//! `scripts/test.sh`, which installs and starts it. Without it they fail, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use batch_core::{BatchEndpoint, Config, ExecuteError, Executor};
use batch_redis::RedisStore;
use bytes::Bytes;
use fixture::redis::{RedisServer, url_from_env_or_start};
use http::{Request, Response, StatusCode};
use http_body_util::Full;

/// Counts the ops it runs; `/slow` takes 300 ms.
#[derive(Clone, Default)]
struct Counting(Arc<AtomicUsize>);

impl Executor for Counting {
    async fn execute(
        &self,
        request: Request<Bytes>,
        _: usize,
    ) -> Result<Response<Bytes>, ExecuteError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if request.uri().path() == "/slow" {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok(Response::new(Bytes::from_static(b"{}")))
    }
}

/// A replica: an endpoint whose keys live in Redis at `url`, under `prefix`.
fn replica(url: &str, prefix: &str) -> BatchEndpoint {
    let store = RedisStore::builder(url).prefix(prefix).build().unwrap();
    BatchEndpoint::new(Config::builder().idempotency_store(store).build().unwrap())
}

fn batch(key: Option<&str>) -> Request<Full<Bytes>> {
    let mut request = Request::post("/batch").header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request
        .body(Full::new(Bytes::from_static(
            br#"{"ops": [{"url": "/slow"}]}"#,
        )))
        .unwrap()
}

fn prefix(test: &str) -> String {
    format!("batch-redis-test:{}:{test}:", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_sent_to_two_replicas_at_once_runs_on_one() {
    let (url, _redis) = url_from_env_or_start().unwrap_or_else(|err| panic!("{err}"));
    let (a, b) = (
        replica(&url, &prefix("race")),
        replica(&url, &prefix("race")),
    );
    let app = Counting::default();
    let (on_a, on_b) = tokio::join!(
        a.handle(&app, batch(Some("k"))),
        b.handle(&app, batch(Some("k")))
    );
    let mut statuses = [on_a.status(), on_b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    assert_eq!(app.0.load(Ordering::SeqCst), 1, "the op ran once");
    let ran = if on_a.status() == StatusCode::OK {
        on_a
    } else {
        on_b
    };
    for replica in [&a, &b] {
        let retry = replica.handle(&app, batch(Some("k"))).await;
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(retry.body(), ran.body());
    }
    assert_eq!(app.0.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_batches_wait_for_redis_and_plain_ones_do_not() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = replica(&format!("redis://127.0.0.1:{port}"), &prefix("late"));
    let app = Counting::default();
    let refused = endpoint.handle(&app, batch(Some("k"))).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(app.0.load(Ordering::SeqCst), 0, "nothing ran unprotected");
    let plain = endpoint.handle(&app, batch(None)).await;
    assert_eq!(plain.status(), StatusCode::OK);

    let _redis = RedisServer::start_on(port).unwrap_or_else(|err| panic!("{err}"));
    let taken = endpoint.handle(&app, batch(Some("k"))).await;
    assert_eq!(taken.status(), StatusCode::OK);
    assert_eq!(app.0.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_kept_forever_is_kept_and_replayed() {
    let (url, _redis) = url_from_env_or_start().unwrap_or_else(|err| panic!("{err}"));
    let store = RedisStore::builder(&url)
        .prefix(prefix("forever"))
        .build()
        .unwrap();
    let config = Config::builder()
        .idempotency_store(store)
        .idempotency_ttl(Duration::MAX)
        .build()
        .unwrap();
    let endpoint = BatchEndpoint::new(config);
    let app = Counting::default();
    let first = endpoint.handle(&app, batch(Some("k"))).await;
    assert_eq!(first.status(), StatusCode::OK, "{:?}", first.body());
    let again = endpoint.handle(&app, batch(Some("k"))).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.body(), first.body(), "the answer replayed");
    assert_eq!(app.0.load(Ordering::SeqCst), 1, "the op ran once");
}
