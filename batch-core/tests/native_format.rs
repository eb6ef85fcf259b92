//! The native format on the wire: how each op field becomes a request, how results
//! are written, and how malformed batches are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use batch_core::{BatchEndpoint, Config};
use bytes::Bytes;
use common::{Script, run, statuses};
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};

async fn one(op: Value) -> Value {
    let (status, body) = run(Config::default(), &Script::default(), json!({"ops": [op]})).await;
    assert_eq!(status, 200, "{body}");
    body["results"][0].clone()
}

async fn refused(batch: Value) -> (u16, Value) {
    let (status, body) = run(Config::default(), &Script::default(), batch).await;
    (status.as_u16(), body)
}

#[tokio::test]
async fn defaults_get_with_the_index_as_id() {
    let result = one(json!({"url": "/e"})).await;
    assert_eq!(result["id"], "0");
    assert_eq!(result["body"]["method"], "GET");
    let result = one(json!({"url": "/e", "method": "patch", "id": "mine"})).await;
    assert_eq!(
        (result["id"].as_str(), result["body"]["method"].as_str()),
        (Some("mine"), Some("PATCH"))
    );
}

#[tokio::test]
async fn json_bodies_are_sent_verbatim_as_json() {
    let result =
        one(json!({"method": "POST", "url": "/e", "body": {"name": "pen", "n": [1, 2]}})).await;
    assert_eq!(
        result["body"]["headers"]["content-type"],
        "application/json"
    );
    assert_eq!(
        serde_json::from_str::<Value>(result["body"]["body"].as_str().unwrap()).unwrap(),
        json!({"name": "pen", "n": [1, 2]})
    );
}

#[tokio::test]
async fn string_bodies_with_a_non_json_type_are_sent_as_their_bytes() {
    let op = json!({"method": "POST", "url": "/e", "headers": {"Content-Type": "text/plain"}, "body": "hi \"you\""});
    assert_eq!(one(op).await["body"]["body"], "hi \"you\"");
    let op = json!({"method": "POST", "url": "/e", "headers": {"content-type": "text/plain"}, "body": [1]});
    assert_eq!(
        one(op).await["body"]["body"],
        "[1]",
        "non-strings stay JSON text"
    );
    let op = json!({"method": "POST", "url": "/e", "headers": {"content-type": "application/vnd.x+json"}, "body": "s"});
    assert_eq!(
        one(op).await["body"]["body"],
        "\"s\"",
        "a JSON type keeps the JSON string"
    );
}

#[tokio::test]
async fn base64_bodies_are_raw_bytes() {
    let result = one(json!({"method": "POST", "url": "/e", "body_base64": "aGk="})).await;
    assert_eq!(result["body"]["body"], "hi");
    assert_eq!(
        result["body"]["headers"]["content-type"],
        "application/octet-stream"
    );
}

#[tokio::test]
async fn params_extend_the_query_or_become_the_body() {
    // Raw text: `json!` would sort the keys, and the client's order is what is kept.
    let batch = r#"{"ops": [{"url": "/e?a=1", "params": {"q": "a b&c", "n": 2, "t": true, "z": null, "r": ["x", "y"]}}]}"#;
    let request = Request::post("/batch")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(batch.as_bytes())))
        .unwrap();
    let response = BatchEndpoint::new(Config::default())
        .handle(&Script::default(), request)
        .await;
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(
        body["results"][0]["body"]["uri"],
        "/e?a=1&q=a%20b%26c&n=2&t=true&z=&r=x&r=y"
    );
    let op = json!({"url": "/e", "method": "delete", "args": {"id": 5}});
    assert_eq!(one(op).await["body"]["uri"], "/e?id=5", "args is an alias");
    let op = json!({"url": "/e", "method": "post", "params": {"name": "pen"}});
    let result = one(op).await;
    assert_eq!(result["body"]["uri"], "/e");
    assert_eq!(
        result["body"]["body"],
        r#"{"name": "pen"}"#.replace(": ", ":")
    );
}

#[tokio::test]
async fn op_headers_replace_inherited_ones_and_repeat_as_arrays() {
    let op = json!({"url": "/e", "headers": {"Accept": "text/html", "X-Two": ["a", "b"]}});
    let result = one(op).await;
    assert_eq!(result["body"]["headers"]["accept"], "text/html");
    assert_eq!(
        result["body"]["headers"]["authorization"], "Bearer outer",
        "identity is inherited"
    );
}

#[tokio::test]
async fn result_bodies_are_json_text_base64_or_null() {
    let (_, body) = run(
        Config::default(),
        &Script::default(),
        json!({"ops": [{"url": "/status/200"}, {"url": "/text"}, {"url": "/binary"}, {"url": "/e", "method": "HEAD"}]}),
    )
    .await;
    let results = &body["results"];
    assert_eq!(results[0]["body"], json!({}));
    assert_eq!(results[1]["body"], "hello");
    assert_eq!(results[2]["body_base64"], "AJ//");
    assert!(results[2].get("body").is_none());
    assert_eq!(results[3]["body"], Value::Null);
}

#[tokio::test]
async fn silent_and_include_headers_trim_results() {
    let (_, body) = run(
        Config::default(),
        &Script::default(),
        json!({"ops": [{"url": "/status/200", "silent": true}, {"url": "/status/404", "silent": true}]}),
    )
    .await;
    assert_eq!(body["results"][0], json!({"id": "0", "status": 200}));
    assert!(
        body["results"][1].get("headers").is_some(),
        "silent only hides successes"
    );
    let (_, body) = run(
        Config::default(),
        &Script::default(),
        json!({"ops": [{"url": "/status/200"}], "include_headers": false}),
    )
    .await;
    assert!(body["results"][0].get("headers").is_none());
    assert_eq!(body["results"][0]["body"], json!({}));
}

#[tokio::test]
async fn malformed_batches_are_400_with_a_pointer() {
    let cases = [
        (json!({"ops": [{"url": 5}]}), Some("/ops/0/url")),
        (json!({"ops": [{"method": "GET"}]}), Some("/ops/0/url")),
        (json!({"ops": []}), Some("/ops")),
        (json!({"ops": {}}), Some("/ops")),
        (json!({"nope": []}), None),
        (json!({"ops": [{"url": "/a", "id": ""}]}), Some("/ops/0/id")),
        (
            json!({"ops": [{"url": "/a", "timeout_ms": 0}]}),
            Some("/ops/0/timeout_ms"),
        ),
        (
            json!({"ops": [{"url": "/a", "timeout_ms": -1}]}),
            Some("/ops/0/timeout_ms"),
        ),
        (
            json!({"ops": [{"url": "/a", "timeout_ms": 1.5}]}),
            Some("/ops/0/timeout_ms"),
        ),
        (
            json!({"ops": [{"url": "/a", "body": 1, "body_base64": "AA=="}]}),
            Some("/ops/0/body_base64"),
        ),
        (
            json!({"ops": [{"url": "/a", "body_base64": "!!"}]}),
            Some("/ops/0/body_base64"),
        ),
        (
            json!({"ops": [{"url": "/a", "params": {"o": {"x": 1}}}]}),
            Some("/ops/0/params/o"),
        ),
        (
            json!({"ops": [{"url": "/a", "headers": {"x": 1}}]}),
            Some("/ops/0/headers"),
        ),
        (
            json!({"ops": [{"url": "/a"}], "on_error": "explode"}),
            Some("/on_error"),
        ),
        (
            json!({"ops": [{"url": "/a"}], "sequential": "yes"}),
            Some("/sequential"),
        ),
        // A top-level array is the aggregate format, which wants path strings.
        (json!([1, 2]), Some("/0")),
    ];
    for (batch, pointer) in cases {
        let (status, problem) = refused(batch.clone()).await;
        assert_eq!(status, 400, "{batch}: {problem}");
        assert_eq!(problem["pointer"].as_str(), pointer, "{batch}");
        assert_eq!(problem["status"], 400);
    }
}

#[tokio::test]
async fn invalid_ops_are_422_at_the_lowest_offending_index() {
    let (status, problem) = refused(json!({"ops": [
        {"id": "a", "url": "/x", "depends_on": "c"},
        {"id": "b", "url": "/x", "depends_on": "a"},
        {"id": "c", "url": "/x", "depends_on": "b"}
    ]}))
    .await;
    assert_eq!((status, problem["op"].as_u64()), (422, Some(0)));
    let (status, problem) =
        refused(json!({"ops": [{"id": "A", "url": "/x"}, {"id": "a", "url": "/x"}]})).await;
    assert_eq!(
        (status, problem["op"].as_u64(), problem["pointer"].as_str()),
        (422, Some(1), Some("/ops/1/id"))
    );
    let (status, problem) = refused(json!({"ops": [{"url": "/x", "depends_on": ["ghost"]}]})).await;
    assert_eq!(
        (status, problem["pointer"].as_str()),
        (422, Some("/ops/0/depends_on/0"))
    );
}

#[tokio::test]
async fn documents_nesting_deeper_than_128_are_400_and_128_is_fine() {
    let nested = |depth: usize| {
        // {"ops": [{"url": "/e", "body": [[...]]}]} nests 3 levels before the body.
        let body = format!("{}{}", "[".repeat(depth - 3), "]".repeat(depth - 3));
        format!(r#"{{"ops": [{{"url": "/e", "method": "POST", "body": {body}}}]}}"#)
    };
    let endpoint = BatchEndpoint::new(Config::default());
    let send = |text: String| {
        Request::post("/batch")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(text)))
            .unwrap()
    };
    let response = endpoint.handle(&Script::default(), send(nested(128))).await;
    assert_eq!(response.status(), 200);
    let response = endpoint.handle(&Script::default(), send(nested(129))).await;
    assert_eq!(response.status(), 400);
    let response = endpoint
        .handle(&Script::default(), send("[".repeat(10_000)))
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn content_types_other_than_json_are_415() {
    let endpoint = BatchEndpoint::new(Config::default());
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut request = Request::post("/batch");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = endpoint
            .handle(
                &Script::default(),
                request
                    .body(Full::new(Bytes::from_static(br#"{"ops":[{"url":"/a"}]}"#)))
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), 415, "{content_type:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let (status, body) = run(
        Config::default(),
        &Script::default(),
        json!({"ops": [{"url": "/status/200", "future": 1}], "also": true}),
    )
    .await;
    assert_eq!((status.as_u16(), statuses(&body)), (200, vec![200]));
}
