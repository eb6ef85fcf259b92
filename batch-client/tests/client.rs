//! The client against the fixture servers of every framework, over real HTTP:
//! discovery, splitting, retries, refusals and streaming.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::Duration;

use batch_client::{Capabilities, Client, Error, Operation, RetryPolicy, WireFormat};
use batch_core::{Config, SocketConfig};
use common::{batch_url, counter, start};
use fixture::Framework;
use futures::StreamExt;
use serde_json::{Value, json};

#[tokio::test]
async fn the_server_advertises_its_config_and_the_client_reads_it() {
    let config = Config::builder()
        .max_ops(9)
        .max_body(4096)
        .sockets(SocketConfig::default())
        .build()
        .unwrap();
    for framework in Framework::ALL {
        let server = start(framework, config.clone());
        let client = Client::new(&batch_url(&server)).unwrap();
        let advertised = client.capabilities().await;
        assert_eq!(advertised, &config.capabilities(), "{}", framework.name());
        assert_eq!(advertised.max_ops, 9);
        assert_eq!(advertised.socket_path.as_deref(), Some("/socket"));
    }
    // Something that does not advertise: the default limits are assumed, and no
    // idempotency keys.
    let server = start(Framework::Axum, Config::default());
    let client = Client::new(&format!("{}/echo", server.url())).unwrap();
    let assumed = client.capabilities().await;
    assert!(!assumed.idempotency);
    let mut defaults = Capabilities::default();
    defaults.idempotency = false;
    defaults.streaming = false;
    assert_eq!(assumed, &defaults);
}

#[tokio::test]
async fn a_long_list_is_split_within_the_servers_limits_and_answered_in_order() {
    for framework in Framework::ALL {
        let name = framework.name();
        let server = start(framework, Config::builder().max_ops(5).build().unwrap());
        for format in [WireFormat::Native, WireFormat::Graph] {
            let client = Client::builder(&batch_url(&server))
                .format(format)
                .concurrency(3)
                .build()
                .unwrap();
            let mut batch = client.batch();
            for i in 0..23 {
                batch = batch.get(&format!("/items/{}", i + 1));
            }
            // Ops 4 and 5 are tied across the first boundary; 6 names 5 by position.
            let batch = batch
                .post("/items", json!({"name": "tied"}))
                .id("made")
                .get("/health")
                .depends_on("made")
                .get("/text")
                .depends_on("24");
            let results = batch.send().await.unwrap();
            assert_eq!(results.len(), 26, "{name} {format:?}");
            for (i, result) in results.iter().enumerate().take(23) {
                assert_eq!(result.index, i);
                assert_eq!(result.id, i.to_string());
                assert_eq!(
                    result.json::<Value>().unwrap()["id"],
                    i + 1,
                    "{name} {format:?}"
                );
            }
            assert_eq!(results[23].id, "made");
            assert_eq!(results[23].status, 201, "{name} {format:?}");
            assert_eq!(results[24].status, 200, "{name} {format:?}");
            assert_eq!(
                results[25].status, 200,
                "{name} {format:?}: {:?}",
                results[25]
            );
        }
    }
}

#[tokio::test]
async fn a_group_too_large_for_one_batch_fails_before_anything_is_sent() {
    let server = start(
        Framework::Actix,
        Config::builder().max_ops(3).build().unwrap(),
    );
    let client = Client::new(&batch_url(&server)).unwrap();
    let before = counter(&server).await;
    let chain = client
        .batch()
        .get("/health")
        .get("/items/1")
        .id("a")
        .get("/items/2")
        .id("b")
        .depends_on("a")
        .get("/items/3")
        .depends_on("b")
        .get("/items/4")
        .depends_on("a");
    match chain.send().await {
        Err(Error::GroupTooLarge {
            ops,
            count,
            max_ops,
            ..
        }) => {
            assert_eq!(ops, [1, 2, 3, 4]);
            assert_eq!(count, 4);
            assert_eq!(max_ops, 3);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(counter(&server).await, before + 1, "only the counter ran");
}

#[tokio::test]
async fn rate_limited_ops_are_retried_and_unsafe_ones_only_when_asked() {
    for framework in Framework::ALL {
        let name = framework.name();
        let server = start(framework, Config::default());
        let client = Client::new(&batch_url(&server)).unwrap();
        let results = client
            .batch()
            .get("/flaky/a?fail=1")
            .id("a")
            .get("/health")
            .depends_on("a")
            .get("/flaky/b?fail=9")
            .get("/health")
            .send()
            .await
            .unwrap();
        assert_eq!(results[0].status, 200, "{name}");
        assert_eq!(results[0].attempts, 2);
        assert_eq!(
            results[1].status, 200,
            "{name}: its 424 went along with the retry"
        );
        assert_eq!(results[1].attempts, 2);
        assert_eq!(
            results[2].status, 429,
            "{name}: still refused after 4 attempts"
        );
        assert_eq!(results[2].attempts, 4);
        assert_eq!(results[2].error().as_deref(), Some("rate_limited"));
        assert_eq!(
            results[3].attempts, 1,
            "{name}: a success is not sent again"
        );

        // A POST answered 429 may have done something: sent again only when asked.
        let post = |key: &str| Operation::new("POST", format!("/flaky/{key}?fail=1"));
        let once = client.batch().op(post("c")).send().await.unwrap();
        assert_eq!(once[0].status, 429, "{name}");
        assert_eq!(once[0].attempts, 1);
        let unsafe_too = Client::builder(&batch_url(&server))
            .retry(RetryPolicy::default().retry_unsafe(true))
            .build()
            .unwrap();
        let retried = unsafe_too.batch().op(post("e")).send().await.unwrap();
        assert_eq!(retried[0].status, 200, "{name}");
        assert_eq!(retried[0].attempts, 2);

        let never = Client::builder(&batch_url(&server))
            .retry(RetryPolicy::none())
            .build()
            .unwrap();
        let refused = never.batch().get("/flaky/d").send().await.unwrap();
        assert_eq!(refused[0].status, 429, "{name}");
    }
}

#[tokio::test]
async fn a_batch_refused_with_503_is_sent_again() {
    // One batch at a time may run: the others are refused 503 with retry-after.
    let config = Config::builder()
        .max_ops(2)
        .max_concurrency(2)
        .max_in_flight(2)
        .build()
        .unwrap();
    let server = start(Framework::Tower, config);
    let client = Client::builder(&batch_url(&server))
        .concurrency(4)
        .retry(RetryPolicy::default().max_attempts(10))
        .build()
        .unwrap();
    let mut batch = client.batch();
    for _ in 0..8 {
        batch = batch.get("/slow?ms=200");
    }
    let results = batch.send().await.unwrap();
    assert!(results.iter().all(|r| r.status == 200), "{results:?}");
    assert!(
        results.iter().any(|r| r.attempts > 1),
        "some batch was refused first"
    );

    let once = Client::builder(&batch_url(&server))
        .concurrency(4)
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let mut batch = once.batch();
    for _ in 0..8 {
        batch = batch.get("/slow?ms=200");
    }
    match batch.send().await {
        Err(Error::Refused { status, problem }) => {
            assert_eq!(status, 503);
            assert!(problem.unwrap().detail.unwrap().contains("retry"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_refused_batch_names_the_op_at_fault_in_the_callers_list() {
    for framework in Framework::ALL {
        let server = start(framework, Config::builder().max_ops(2).build().unwrap());
        let client = Client::new(&batch_url(&server)).unwrap();
        let mut bad = Operation::new("GET", "/health");
        bad.headers
            .push(("host".into(), "elsewhere.example".into()));
        let answer = client
            .batch()
            .get("/health")
            .get("/health")
            .get("/health")
            .op(bad)
            .send()
            .await;
        match answer {
            Err(Error::Refused { status, problem }) => {
                assert_eq!(status, 422, "{}", framework.name());
                assert_eq!(problem.unwrap().op, Some(3), "the second batch's op 1");
            }
            other => panic!("{}: {other:?}", framework.name()),
        }
    }
}

#[tokio::test]
async fn results_stream_as_each_batch_answers() {
    let server = start(
        Framework::Warp,
        Config::builder().max_ops(1).build().unwrap(),
    );
    let client = Client::builder(&batch_url(&server))
        .concurrency(2)
        .build()
        .unwrap();
    let mut results = client.batch().get("/slow?ms=1500").get("/health").stream();
    let started = std::time::Instant::now();
    let first = results.next().await.unwrap().unwrap();
    assert_eq!(first.index, 1, "the fast batch's result comes first");
    assert!(started.elapsed() < Duration::from_millis(1500));
    let second = results.next().await.unwrap().unwrap();
    assert_eq!(second.index, 0);
    assert!(results.next().await.is_none());
}

#[tokio::test]
async fn a_streaming_server_answers_each_result_of_one_batch_as_its_op_finishes() {
    for framework in Framework::ALL {
        let name = framework.name();
        let server = start(framework, Config::default());
        let client = Client::new(&batch_url(&server)).unwrap();
        assert!(client.capabilities().await.streaming, "{name}");
        let mut results = client.batch().get("/slow?ms=1500").get("/items/0").stream();
        let started = std::time::Instant::now();
        let first = results.next().await.unwrap().unwrap();
        assert_eq!(first.index, 1, "{name}: the fast op's result comes first");
        assert_eq!(first.status, 404, "{name}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{name}: it came while the slow op ran, in the same batch"
        );
        let second = results.next().await.unwrap().unwrap();
        assert_eq!((second.index, second.status.as_u16()), (0, 200), "{name}");
        assert!(results.next().await.is_none(), "{name}");
        // The buffered answer of the same batch: every result, in order.
        let sent = client
            .batch()
            .get("/slow?ms=0")
            .get("/items/0")
            .send()
            .await
            .unwrap();
        assert_eq!(sent.len(), 2, "{name}");
    }
}
