//! Idempotency keys: a keyed batch runs at most once per key and caller, and a
//! retry gets the first answer again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use batch_core::{BatchEndpoint, Config, Problem};
use bytes::Bytes;
use common::Script;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;

fn keyed(key: &str, caller: &str, body: &str) -> Request<Full<Bytes>> {
    Request::post("/batch")
        .header("content-type", "application/json")
        .header("authorization", caller)
        .header("idempotency-key", key)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

fn json_of(response: &Response<Bytes>) -> Value {
    serde_json::from_slice(response.body()).unwrap()
}

/// Sends `slow` under key `k`, and again 50 ms later while the first still runs.
async fn first_and_a_duplicate(
    endpoint: &BatchEndpoint,
    script: &Script,
    slow: &str,
) -> (Response<Bytes>, Response<Bytes>) {
    let first = endpoint.handle(script, keyed("k", "Bearer ada", slow));
    let duplicate = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        endpoint
            .handle(script, keyed("k", "Bearer ada", slow))
            .await
    };
    tokio::join!(first, duplicate)
}

const BATCH: &str = r#"{"ops": [{"method": "POST", "url": "/items"}, {"url": "/status/500"}]}"#;

#[tokio::test]
async fn a_retry_gets_the_stored_answer_and_runs_nothing() {
    let endpoint = BatchEndpoint::new(Config::default());
    let script = Script::default();
    let first = endpoint
        .handle(&script, keyed("k1", "Bearer ada", BATCH))
        .await;
    assert_eq!(
        first.status(),
        StatusCode::OK,
        "failed ops are answered 200"
    );
    assert_eq!(json_of(&first)["results"][1]["status"], 500);
    let again = endpoint
        .handle(&script, keyed("k1", "Bearer ada", BATCH))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.body(), first.body());
    assert_eq!(
        again.headers()["content-type"],
        first.headers()["content-type"]
    );
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert!(!first.headers().contains_key("idempotent-replayed"));
    assert_eq!(script.started.lock().unwrap().len(), 2, "each op ran once");
}

#[tokio::test]
async fn another_request_under_the_same_key_is_refused() {
    let endpoint = BatchEndpoint::new(Config::default());
    let script = Script::default();
    let first = endpoint
        .handle(&script, keyed("k", "Bearer ada", BATCH))
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let other = r#"{"ops": [{"method": "POST", "url": "/items"}]}"#;
    let reused = endpoint
        .handle(&script, keyed("k", "Bearer ada", other))
        .await;
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.headers()["content-type"], "application/problem+json");
    assert_eq!(json_of(&reused)["code"], "idempotency_key_reused");
    assert_eq!(script.started.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn callers_keys_are_apart() {
    let endpoint = BatchEndpoint::new(Config::default());
    let script = Script::default();
    let ops = r#"{"ops": [{"url": "/whoami"}]}"#;
    let ada = endpoint
        .handle(&script, keyed("same", "Bearer ada", ops))
        .await;
    let bob = endpoint
        .handle(&script, keyed("same", "Bearer bob", ops))
        .await;
    let seen =
        |r: &Response<Bytes>| json_of(r)["results"][0]["body"]["headers"]["authorization"].clone();
    assert_eq!(seen(&ada), "Bearer ada");
    assert_eq!(
        seen(&bob),
        "Bearer bob",
        "bob's batch ran as bob, not ada's answer"
    );
    assert!(!bob.headers().contains_key("idempotent-replayed"));
    assert_eq!(script.started.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn the_app_can_name_the_caller() {
    let config = Config::builder()
        .idempotency_identity(|request| {
            request
                .headers
                .get("x-user")
                .map_or_else(Vec::new, |v| v.as_bytes().to_vec())
        })
        .build()
        .unwrap();
    let endpoint = BatchEndpoint::new(config);
    let script = Script::default();
    let send = |user: &str, token: &str| {
        let mut request = keyed("k", token, BATCH);
        request
            .headers_mut()
            .insert("x-user", user.parse().unwrap());
        endpoint.handle(&script, request)
    };
    send("7", "Bearer one").await;
    let same_user = send("7", "Bearer two").await;
    assert_eq!(same_user.headers()["idempotent-replayed"], "true");
    let other_user = send("8", "Bearer one").await;
    assert!(!other_user.headers().contains_key("idempotent-replayed"));
    assert_eq!(script.started.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_duplicate_while_the_first_runs_gets_409() {
    let endpoint = BatchEndpoint::new(Config::default());
    let script = Script::default();
    let slow = r#"{"ops": [{"url": "/sleep/300"}]}"#;
    let (first, duplicate) = first_and_a_duplicate(&endpoint, &script, slow).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);
    assert_eq!(duplicate.headers()["retry-after"], "1");
    assert_eq!(json_of(&duplicate)["code"], "idempotency_key_in_use");
    let after = endpoint
        .handle(&script, keyed("k", "Bearer ada", slow))
        .await;
    assert_eq!(after.body(), first.body());
    assert_eq!(script.started.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn keys_kept_longer_than_a_clock_holds_are_kept_not_a_panic() {
    let config = Config::builder()
        .batch_deadline(Duration::MAX)
        .idempotency_ttl(Duration::MAX)
        .build()
        .unwrap();
    let endpoint = BatchEndpoint::new(config);
    let script = Script::default();
    let slow = r#"{"ops": [{"url": "/sleep/200"}]}"#;
    let (first, duplicate) = first_and_a_duplicate(&endpoint, &script, slow).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(json_of(&duplicate)["code"], "idempotency_key_in_use");
    let retry = endpoint
        .handle(&script, keyed("k", "Bearer ada", slow))
        .await;
    assert_eq!(retry.body(), first.body());
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(script.started.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_interrupted_batch_never_runs_again_under_its_key() {
    let endpoint = BatchEndpoint::new(Config::default());
    let script = Script::default();
    let slow = r#"{"ops": [{"url": "/sleep/10000"}]}"#;
    let cut = tokio::time::timeout(
        Duration::from_millis(50),
        endpoint.handle(&script, keyed("k", "Bearer ada", slow)),
    )
    .await;
    assert!(cut.is_err(), "the client left");
    let retry = endpoint
        .handle(&script, keyed("k", "Bearer ada", slow))
        .await;
    assert_eq!(retry.status(), StatusCode::CONFLICT);
    assert_eq!(script.started.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_batch_is_not_stored() {
    // Refuses the first batch it sees, then lets every batch through.
    let seen = Arc::new(AtomicUsize::new(0));
    let config = Config::builder()
        .batch_hook(move |_| {
            let first = seen.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    Err(Problem::new(StatusCode::TOO_MANY_REQUESTS, "later"))
                } else {
                    Ok(())
                }
            }
        })
        .build()
        .unwrap();
    let endpoint = BatchEndpoint::new(config);
    let script = Script::default();
    let refused = endpoint
        .handle(&script, keyed("k", "Bearer ada", BATCH))
        .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(script.started.lock().unwrap().is_empty());
    let ran = endpoint
        .handle(&script, keyed("k", "Bearer ada", BATCH))
        .await;
    assert_eq!(ran.status(), StatusCode::OK);
    assert!(!ran.headers().contains_key("idempotent-replayed"));
    assert_eq!(script.started.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_keys_are_refused_before_anything_runs() {
    let endpoint = BatchEndpoint::new(Config::default());
    let script = Script::default();
    for key in ["", &"k".repeat(256), "two words"] {
        let response = endpoint
            .handle(&script, keyed(key, "Bearer ada", BATCH))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{key:?}");
        assert_eq!(json_of(&response)["code"], "idempotency_key_invalid");
    }
    let longest = endpoint
        .handle(&script, keyed(&"k".repeat(255), "Bearer ada", BATCH))
        .await;
    assert_eq!(longest.status(), StatusCode::OK);
    assert_eq!(script.started.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn any_format_is_replayed_byte_for_byte() {
    let endpoint = BatchEndpoint::new(Config::default());
    let script = Script::default();
    let body =
        "--b\r\nContent-Type: application/http\r\n\r\nGET /text HTTP/1.1\r\n\r\n\r\n--b--\r\n";
    let send = || {
        let request = Request::post("/batch")
            .header("content-type", "multipart/mixed; boundary=b")
            .header("idempotency-key", "m")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        endpoint.handle(&script, request)
    };
    let first = send().await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = send().await;
    assert_eq!(
        again.headers()["content-type"],
        first.headers()["content-type"]
    );
    assert_eq!(again.body(), first.body());
    assert_eq!(script.started.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn with_idempotency_off_the_header_is_ignored() {
    let endpoint = BatchEndpoint::new(Config::builder().idempotency(false).build().unwrap());
    let script = Script::default();
    for _ in 0..2 {
        let response = endpoint
            .handle(&script, keyed("k", "Bearer ada", BATCH))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(script.started.lock().unwrap().len(), 4);
}
