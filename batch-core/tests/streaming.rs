//! Streamed answers: each result as its op finishes, then the counts; refusals as
//! before; the reader's pace and departure reach the ops.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::Duration;

use batch_core::{BatchEndpoint, Config};
use bytes::Bytes;
use common::Script;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::time::Instant;

fn streamed(accept: &str, body: &Value) -> Request<Full<Bytes>> {
    Request::post("/batch")
        .header("content-type", "application/json")
        .header("accept", accept)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn lines(bytes: &[u8]) -> Vec<Value> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn each_result_comes_as_its_op_finishes_then_the_counts() {
    let endpoint = BatchEndpoint::new(Config::default());
    let script = Script::default();
    let ops = json!({"ops": [
        {"id": "slow", "url": "/sleep/500"},
        {"id": "fast", "url": "/status/404"},
        {"id": "after", "url": "/status/200", "depends_on": "slow"}
    ]});
    let began = Instant::now();
    let response = endpoint
        .respond(&script, streamed("application/x-ndjson", &ops))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert!(response.body().is_streamed());
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(began.elapsed(), Duration::ZERO, "the fast op does not wait");
    assert_eq!(
        lines(&first),
        [
            json!({"index": 1, "id": "fast", "status": 404, "headers": {"content-type": "application/json"}, "body": {}})
        ]
    );
    assert!(
        !script
            .finished
            .lock()
            .unwrap()
            .contains(&"/sleep/500".to_owned()),
        "the slow op still runs"
    );
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(began.elapsed(), Duration::from_millis(500));
    let rest = lines(&rest);
    assert_eq!(rest[0]["id"], "slow");
    assert_eq!(rest[0]["index"], 0);
    assert_eq!(rest[1]["id"], "after");
    assert_eq!(rest[2], json!({"done": true, "ops": 3, "failed": 1}));
}

#[tokio::test]
async fn server_sent_events_carry_the_same_objects() {
    let endpoint = BatchEndpoint::new(Config::default());
    let ops = json!({"include_headers": false, "ops": [
        {"url": "/status/500"},
        {"url": "/status/200", "depends_on": "0"}
    ]});
    let response = endpoint
        .handle(&Script::default(), streamed("text/event-stream", &ops))
        .await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = std::str::from_utf8(response.body()).unwrap();
    assert_eq!(
        text,
        "event: result\ndata: {\"index\":0,\"id\":\"0\",\"status\":500,\"body\":{}}\n\n\
         event: result\ndata: {\"index\":1,\"id\":\"1\",\"status\":424,\"body\":{\"error\":\"dependency_failed\",\"dependency\":\"0\"}}\n\n\
         event: done\ndata: {\"done\":true,\"ops\":2,\"failed\":2}\n\n"
    );
}

#[tokio::test]
async fn a_refused_batch_is_still_a_problem() {
    let endpoint = BatchEndpoint::new(Config::builder().max_ops(1).build().unwrap());
    let ops = json!({"ops": [{"url": "/a"}, {"url": "/b"}]});
    let response = endpoint
        .respond(Script::default(), streamed("application/x-ndjson", &ops))
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(!response.body().is_streamed());
}

#[tokio::test]
async fn ops_see_the_accept_of_a_buffered_batch_not_the_stream() {
    let endpoint = BatchEndpoint::new(Config::default());
    let ops = json!({"ops": [{"url": "/echo"}, {"url": "/echo", "headers": {"accept": "text/event-stream"}}]});
    let response = endpoint
        .handle(
            &Script::default(),
            streamed("application/x-ndjson, application/json;q=0.5", &ops),
        )
        .await;
    let results = lines(response.body());
    let inherited = results.iter().find(|r| r["index"] == 0).unwrap();
    assert_eq!(
        inherited["body"]["headers"]["accept"], "application/json;q=0.5",
        "the stream's range is the batch's"
    );
    let own = results.iter().find(|r| r["index"] == 1).unwrap();
    assert_eq!(
        own["body"]["headers"]["accept"], "text/event-stream",
        "an op's own accept is its own"
    );
}

#[tokio::test]
async fn silent_successes_are_id_and_status_alone() {
    let endpoint = BatchEndpoint::new(Config::default());
    let ops = json!({"ops": [{"url": "/status/201", "silent": true}, {"url": "/text"}]});
    let response = endpoint
        .handle(&Script::default(), streamed("application/jsonl", &ops))
        .await;
    let results = lines(response.body());
    assert_eq!(results.len(), 3);
    let silent = results.iter().find(|r| r["index"] == 0).unwrap();
    assert_eq!(silent, &json!({"index": 0, "id": "0", "status": 201}));
    let text = results.iter().find(|r| r["index"] == 1).unwrap();
    assert_eq!(text["body"], "hello");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_body_cancels_the_ops_not_yet_finished() {
    let endpoint = BatchEndpoint::new(Config::builder().max_concurrency(1).build().unwrap());
    let script = Script::default();
    let ops = json!({"ops": [{"url": "/status/200"}, {"url": "/sleep/1000"}, {"url": "/sleep/1"}]});
    let response = endpoint
        .respond(&script, streamed("application/x-ndjson", &ops))
        .await;
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(body);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        *script.started.lock().unwrap(),
        ["/status/200", "/sleep/1000"]
    );
    assert_eq!(*script.finished.lock().unwrap(), ["/status/200"]);
}

#[tokio::test]
async fn a_keyed_streamed_batch_is_kept_whole_and_replayed() {
    let endpoint = BatchEndpoint::new(Config::default());
    let script = Script::default();
    let ops = json!({"ops": [{"url": "/status/200"}, {"url": "/status/500"}]});
    let keyed = || {
        let mut request = streamed("application/x-ndjson", &ops);
        request
            .headers_mut()
            .insert("idempotency-key", "k".parse().unwrap());
        request
    };
    let first = endpoint.handle(&script, keyed()).await;
    let again = endpoint.handle(&script, keyed()).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["content-type"], "application/x-ndjson");
    assert_eq!(again.body(), first.body());
    assert_eq!(script.started.lock().unwrap().len(), 2, "each op ran once");
}

#[tokio::test]
async fn a_streamed_answer_has_no_whole_batch_cap() {
    let endpoint = BatchEndpoint::new(Config::builder().max_batch_response(100).build().unwrap());
    let ops = json!({"ops": [{"url": "/big/80"}, {"url": "/big/80"}, {"url": "/big/80"}]});
    let response = endpoint
        .handle(&Script::default(), streamed("application/x-ndjson", &ops))
        .await;
    let results = lines(response.body());
    assert!(
        results[..3].iter().all(|r| r["status"] == 200),
        "{results:?}"
    );
    let buffered = endpoint
        .handle(&Script::default(), common::batch_request(&ops))
        .await;
    let buffered: Value = serde_json::from_slice(buffered.body()).unwrap();
    assert_eq!(common::statuses(&buffered), [200, 507, 507]);
}

#[tokio::test]
async fn a_multipart_batch_streams_parts_each_with_its_content_id() {
    let endpoint = BatchEndpoint::new(Config::default());
    let body = "--b\r\nContent-Type: application/http\r\nContent-ID: a\r\n\r\n\
                GET /sleep/50 HTTP/1.1\r\n\r\n\r\n\
                --b\r\nContent-Type: application/http\r\n\r\n\
                GET /status/404 HTTP/1.1\r\n\r\n\r\n--b--\r\n";
    let request = Request::post("/batch")
        .header("content-type", "multipart/mixed; boundary=b")
        .header("accept", "multipart/mixed")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = endpoint.handle(&Script::default(), request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    let boundary = content_type
        .strip_prefix("multipart/mixed; boundary=")
        .unwrap();
    let text = std::str::from_utf8(response.body()).unwrap();
    let parts: Vec<&str> = text.split(&format!("--{boundary}")).collect();
    assert_eq!(parts.len(), 4, "{text}");
    assert!(
        parts[1].contains("Content-ID: <response-1>") && parts[1].contains("404"),
        "{text}"
    );
    assert!(
        parts[2].contains("Content-ID: <response-a>") && parts[2].contains("200 OK"),
        "{text}"
    );
    assert_eq!(parts[3], "--\r\n");
}
