//! Differential property: a random op sent through the batch gets exactly the status,
//! body and meaningful headers the same request gets sent directly to the same app.
//!
//! Two copies of the axum fixture, each with its own store, receive the same requests
//! in the same order, one directly (`oneshot`) and one as a one-op batch
//! (`BatchEndpoint` over `ServiceExecutor`), so their state stays in step. `/counter`,
//! `/slow` and `/panic` are left out: their answers depend on time and on who counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine as _;
use batch_core::{BatchEndpoint, Config, ServiceExecutor};
use bytes::Bytes;
use conformance::fixture::{self, Store};
use http::{Request, Response};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tower::ServiceExt as _;

#[derive(Debug, Clone)]
struct Op {
    method: &'static str,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/health".to_owned()),
        Just("/echo".to_owned()),
        "[a-zA-Z0-9._~-]{1,12}"
            // A dot segment is refused in a batch by design (and normalised by some
            // servers when sent directly): it has no direct twin to compare with.
            .prop_filter("not a dot segment", |s| s != "." && s != "..")
            .prop_map(|segment| format!("/echo/{segment}")),
        Just("/items".to_owned()),
        (0u32..1200).prop_map(|id| format!("/items/{id}")),
        "[a-z0-9]{1,4}".prop_map(|id| format!("/items/{id}")),
        (150u16..650).prop_map(|code| format!("/status/{code}")),
        Just("/text".to_owned()),
        Just("/binary".to_owned()),
        Just("/whoami".to_owned()),
        "[a-z]{1,6}".prop_map(|value| format!("/cookie?name=c&value={value}")),
        "[a-z]{1,8}".prop_map(|name| format!("/{name}")),
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    let pair = ("[a-z]{1,5}", "[a-zA-Z0-9._~-]{0,8}|%20|%2F").prop_map(|(k, v)| format!("{k}={v}"));
    prop::option::of(prop::collection::vec(pair, 1..4).prop_map(|pairs| pairs.join("&")))
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn op() -> impl Strategy<Value = Op> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE"]);
    let header = ("x-t-[a-z]{1,6}", "[!-~]([ -~]{0,14}[!-~])?");
    let body = prop_oneof![
        Just(None),
        "[a-z ]{0,10}".prop_map(|name| Some(json!({ "name": name }))),
        json_value().prop_map(Some),
    ];
    (
        method,
        path(),
        query(),
        prop::collection::btree_map(header.0, header.1, 0..4),
        body,
    )
        .prop_map(|(method, path, query, headers, body)| {
            let url = match query {
                Some(query) if !path.contains('?') => format!("{path}?{query}"),
                Some(query) => format!("{path}&{query}"),
                None => path,
            };
            Op {
                method,
                url,
                headers: headers.into_iter().collect(),
                body,
            }
        })
}

/// The request the batch makes of `op`, built by hand from the spec's rules.
fn direct_request(op: &Op) -> Request<axum::body::Body> {
    let mut request = Request::builder().method(op.method).uri(&op.url);
    for (name, value) in &op.headers {
        request = request.header(name, value);
    }
    let body = match &op.body {
        Some(value) => {
            request = request.header("content-type", "application/json");
            serde_json::to_vec(value).unwrap()
        }
        None => Vec::new(),
    };
    request.body(axum::body::Body::from(body)).unwrap()
}

/// A response as the native format reports it: status, the headers that describe the
/// answer, and the body embedded by the format's rules.
fn as_result(response: Response<Bytes>) -> Value {
    let (parts, body) = response.into_parts();
    let mut headers = Map::new();
    for name in ["content-type", "location", "set-cookie"] {
        if let Some(value) = parts.headers.get(name) {
            headers.insert(name.to_owned(), json!(value.to_str().unwrap()));
        }
    }
    let content_type = parts
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap());
    let json_body = content_type
        .filter(|ct| fixture::is_json_content_type(ct))
        .and_then(|_| serde_json::from_slice::<Value>(&body).ok());
    let (body, body_base64) = match (json_body, std::str::from_utf8(&body)) {
        _ if body.is_empty() => (Value::Null, Value::Null),
        (Some(json), _) => (json, Value::Null),
        (None, Ok(text)) => (json!(text), Value::Null),
        (None, Err(_)) => (
            Value::Null,
            json!(base64::engine::general_purpose::STANDARD.encode(&body)),
        ),
    };
    json!({"status": parts.status.as_u16(), "headers": headers, "body": body, "body_base64": body_base64})
}

/// The batch's result for its one op, reduced to what `as_result` keeps.
fn reduce(result: &Value) -> Value {
    let mut headers = Map::new();
    for name in ["content-type", "location", "set-cookie"] {
        if let Some(value) = result["headers"].get(name) {
            headers.insert(name.to_owned(), value.clone());
        }
    }
    json!({
        "status": result["status"],
        "headers": headers,
        "body": result.get("body").cloned().unwrap_or(Value::Null),
        "body_base64": result.get("body_base64").cloned().unwrap_or(Value::Null),
    })
}

/// Sends each op directly to one app and as a one-op batch to the other, in order.
fn batched_equals_direct(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let direct = fixture::axum::app(Arc::new(Store::default()));
    let batched = fixture::axum::app(Arc::new(Store::default()));
    let endpoint = BatchEndpoint::new(Config::default());
    let executor = ServiceExecutor::new(batched, endpoint.config().max_response_body());
    for op in ops {
        let (expected, actual) = runtime.block_on(async {
            let response = direct.clone().oneshot(direct_request(&op)).await.unwrap();
            let (parts, body) = response.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let expected = as_result(Response::from_parts(parts, body));

            let mut document = json!({"method": op.method, "url": op.url});
            if !op.headers.is_empty() {
                let headers: Map<String, Value> = op
                    .headers
                    .iter()
                    .map(|(name, value)| (name.clone(), json!(value)))
                    .collect();
                document["headers"] = Value::Object(headers);
            }
            if let Some(body) = &op.body {
                document["body"] = body.clone();
            }
            let batch = Request::post("/batch")
                .header("content-type", "application/json")
                .body(Bytes::from(
                    serde_json::to_vec(&json!({ "ops": [document] })).unwrap(),
                ))
                .unwrap();
            let response = endpoint.handle(&executor, batch).await;
            assert_eq!(response.status(), 200, "{op:?}: {:?}", response.body());
            let answer: Value = serde_json::from_slice(response.body()).unwrap();
            (expected, reduce(&answer["results"][0]))
        });
        prop_assert_eq!(&actual, &expected, "{:?}", op);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_batched_op_answers_as_the_same_request_sent_directly(ops in prop::collection::vec(op(), 1..4)) {
        batched_equals_direct(ops)?;
    }
}
