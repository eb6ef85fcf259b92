//! Idempotency keys through the demo: on every framework a keyed batch runs once
//! however often it is sent, another body under its key is refused, a duplicate
//! sent while it runs gets 409, and two callers' keys are apart. Two demo processes
//! sharing a real `redis-server` answer each other's retries; with Redis stopped,
//! keyed batches are refused with 503 and plain ones still run.
//!
//! The Redis test needs `redis-server` (on `PATH`, or `$REDIS_SERVER`):
//! `scripts/test.sh` installs it. Without it that test fails, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::Duration;

use common::Demo;
use conformance::client::Exchange;
use fixture::redis::RedisServer;
use serde_json::{Value, json};

/// Creates one item named `name`.
fn create(name: &str) -> String {
    json!({"ops": [{"id": "new", "method": "POST", "url": "/items", "body": {"name": name}}]})
        .to_string()
}

/// A native batch with `key`, as `caller`.
async fn keyed(demo: &Demo, key: &str, caller: &str, body: &str) -> Exchange {
    let headers = [
        ("content-type", "application/json"),
        ("authorization", caller),
        ("idempotency-key", key),
    ];
    demo.send("POST", "/batch", &headers, body).await
}

fn json_of(exchange: &Exchange) -> Value {
    serde_json::from_slice(&exchange.body).unwrap()
}

async fn counter(demo: &Demo) -> u64 {
    let (status, body) = demo.request("GET", "/counter", Value::Null).await;
    assert_eq!(status, 200);
    body["requests"].as_u64().unwrap()
}

/// The id of the item the `create` batch made.
fn created(exchange: &Exchange) -> u64 {
    let body = json_of(exchange);
    assert_eq!(body["results"][0]["status"], 201, "{body}");
    body["results"][0]["body"]["id"].as_u64().unwrap()
}

fn replayed(exchange: &Exchange) -> bool {
    exchange
        .headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_batch_runs_once_on_every_framework() {
    for framework in ["axum", "actix", "warp", "tower"] {
        let demo = Demo::start(framework, &["--framework", framework], &[]);
        let name = format!("once-{framework}");

        // Sent three times, the batch runs once: one op through the middleware, one
        // item, and the same answer each time.
        let before = counter(&demo).await;
        let first = keyed(&demo, "order-1", "Bearer ada", &create(&name)).await;
        assert_eq!(first.status, 200, "{framework}");
        let id = created(&first);
        for _ in 0..2 {
            let again = keyed(&demo, "order-1", "Bearer ada", &create(&name)).await;
            assert_eq!(again.status, 200, "{framework}");
            assert!(replayed(&again), "{framework}");
            assert_eq!(again.body, first.body, "{framework}");
        }
        assert_eq!(
            counter(&demo).await,
            before + 2,
            "{framework}: the op ran once"
        );
        let (status, item) = demo
            .request("GET", &format!("/items/{id}"), Value::Null)
            .await;
        assert_eq!((status, item["name"].as_str()), (200, Some(name.as_str())));
        let (status, _) = demo
            .request("GET", &format!("/items/{}", id + 1), Value::Null)
            .await;
        assert_eq!(status, 404, "{framework}: no second item");

        // Another body under the same key: 422, nothing runs.
        let before = counter(&demo).await;
        let reused = keyed(&demo, "order-1", "Bearer ada", &create("other")).await;
        assert_eq!(reused.status, 422, "{framework}");
        assert_eq!(json_of(&reused)["code"], "idempotency_key_reused");
        assert_eq!(counter(&demo).await, before + 1, "{framework}");

        // Two callers, one key: each gets its own batch's answer.
        let whoami = json!({"ops": [{"url": "/whoami"}]}).to_string();
        let ada = keyed(&demo, "shared", "Bearer ada", &whoami).await;
        let bob = keyed(&demo, "shared", "Bearer bob", &whoami).await;
        assert_eq!(json_of(&ada)["results"][0]["body"]["user"], "ada");
        assert_eq!(
            json_of(&bob)["results"][0]["body"]["user"],
            "bob",
            "{framework}"
        );
        assert!(!replayed(&bob));

        // A duplicate while the first still runs: 409 with retry-after; once it is
        // done, the stored answer.
        let slow = json!({"ops": [
            {"url": "/slow", "params": {"ms": 600}},
            {"method": "POST", "url": "/items", "body": {"name": "slow"}, "depends_on": "0"}
        ]})
        .to_string();
        let first = keyed(&demo, "slow", "Bearer ada", &slow);
        let duplicate = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            keyed(&demo, "slow", "Bearer ada", &slow).await
        };
        let (first, duplicate) = tokio::join!(first, duplicate);
        assert_eq!(first.status, 200, "{framework}");
        assert_eq!(duplicate.status, 409, "{framework}");
        assert_eq!(duplicate.headers["retry-after"], "1");
        assert_eq!(json_of(&duplicate)["code"], "idempotency_key_in_use");
        let after = keyed(&demo, "slow", "Bearer ada", &slow).await;
        assert!(replayed(&after) && after.body == first.body, "{framework}");
        let slow_id = json_of(&first)["results"][1]["body"]["id"]
            .as_u64()
            .unwrap();
        let (status, _) = demo
            .request("GET", &format!("/items/{}", slow_id + 1), Value::Null)
            .await;
        assert_eq!(status, 404, "{framework}: the slow batch created one item");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_answer_each_others_retries_through_redis() {
    let mut redis = RedisServer::start().unwrap_or_else(|err| panic!("{err}"));
    let a = Demo::start("A", &["--redis", &redis.url()], &[]);
    let b = Demo::start("B", &["--redis", &redis.url(), "--framework", "actix"], &[]);

    // The batch runs on A; its retry lands on B, which answers from Redis and runs
    // nothing.
    let first = keyed(&a, "across", "Bearer ada", &create("across")).await;
    assert_eq!(first.status, 200);
    let id = created(&first);
    let before_b = counter(&b).await;
    let retry = keyed(&b, "across", "Bearer ada", &create("across")).await;
    assert_eq!(retry.status, 200);
    assert!(replayed(&retry));
    assert_eq!(retry.body, first.body);
    assert_eq!(counter(&b).await, before_b + 1, "B ran no op");
    let (status, _) = a
        .request("GET", &format!("/items/{}", id + 1), Value::Null)
        .await;
    assert_eq!(status, 404, "A created one item");
    // Another caller with the same key on B runs its own batch there.
    let bob = keyed(&b, "across", "Bearer bob", &create("by-bob")).await;
    assert!(!replayed(&bob));
    assert_eq!(json_of(&bob)["results"][0]["body"]["name"], "by-bob");
    let reused = keyed(&b, "across", "Bearer ada", &create("changed")).await;
    assert_eq!(reused.status, 422);

    // Redis stopped: keyed batches are refused, plain ones run.
    redis.stop();
    for demo in [&a, &b] {
        let before = counter(demo).await;
        let refused = keyed(demo, "down", "Bearer ada", &create("down")).await;
        assert_eq!(refused.status, 503);
        assert_eq!(refused.headers["retry-after"], "1");
        assert_eq!(json_of(&refused)["code"], "idempotency_store_unavailable");
        assert_eq!(
            counter(demo).await,
            before + 1,
            "the refused batch ran nothing"
        );
        assert_eq!(demo.batch(json!([{"url": "/health"}])).await, [200]);
    }

    // Redis back on the same port: keys work again, with no restart.
    redis.restart().unwrap_or_else(|err| panic!("{err}"));
    let back = keyed(&a, "down", "Bearer ada", &create("back")).await;
    assert_eq!(back.status, 200, "{}", String::from_utf8_lossy(&back.body));
    let retry = keyed(&b, "down", "Bearer ada", &create("back")).await;
    assert!(replayed(&retry));
}
