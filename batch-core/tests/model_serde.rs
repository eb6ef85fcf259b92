//! A client and a server share one model: what a client serialises is the native
//! batch the server decodes, and what the server answers deserialises into the
//! results it ran.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use batch_core::{
    BatchRequest, BatchResponse, Config, Format, OnError, OpResult, Operation, ResultBody,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use serde_json::json;

/// The server's reading of a native document.
fn server_decode(body: &[u8]) -> BatchRequest {
    let (parts, ()) = http::Request::post("/batch")
        .header("content-type", "application/json")
        .body(())
        .unwrap()
        .into_parts();
    batch_core::decode(&parts, &Bytes::copy_from_slice(body), &Config::default()).unwrap()
}

#[test]
fn a_batch_a_client_builds_is_the_batch_the_server_decodes() {
    let mut create = Operation::new("POST", "/items");
    create.id = Some("new".into());
    create.headers = vec![
        ("content-type".into(), "application/json".into()),
        ("x-many".into(), "1".into()),
        ("x-many".into(), "2".into()),
    ];
    create.body = Bytes::from_static(br#"{"name": "pen", "price": 1.50}"#);
    let mut note = Operation::new("PUT", "/notes/1");
    note.headers = vec![("content-type".into(), "text/plain".into())];
    note.body = Bytes::from_static("caf\u{e9}".as_bytes());
    note.depends_on = vec!["new".into()];
    let mut blob = Operation::new("PUT", "/blobs/1");
    blob.headers = vec![("content-type".into(), "image/png".into())];
    blob.body = Bytes::from_static(&[0x89, b'P', 0xff]);
    blob.silent = true;
    blob.timeout = Some(Duration::from_millis(250));
    let mut batch = BatchRequest::new(vec![create, note, blob, Operation::new("GET", "/a")]);
    batch.sequential = true;
    batch.on_error = OnError::Stop;
    batch.include_headers = false;

    let sent = serde_json::to_vec(&batch).unwrap();
    assert_eq!(
        server_decode(&sent),
        batch,
        "{}",
        String::from_utf8_lossy(&sent)
    );
    let document: serde_json::Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(
        document["ops"][0]["body"],
        json!({"name": "pen", "price": 1.50}),
        "a JSON body travels as JSON"
    );
    assert_eq!(document["ops"][1]["body"], "caf\u{e9}");
    assert_eq!(document["ops"][2]["body_base64"], "iVD/");
    assert_eq!(document["ops"][0]["headers"]["x-many"], json!(["1", "2"]));
    assert_eq!(
        serde_json::from_slice::<BatchRequest>(&sent).unwrap(),
        batch
    );
}

#[test]
fn an_op_alone_reads_and_writes_as_a_native_op() {
    let op: Operation =
        serde_json::from_value(json!({"url": "/e", "method": "delete", "depends_on": "a"}))
            .unwrap();
    assert_eq!(op.method.as_deref(), Some("delete"));
    assert_eq!(op.depends_on, ["a"]);
    let back: Operation = serde_json::from_value(serde_json::to_value(&op).unwrap()).unwrap();
    assert_eq!(back, op);
    let refused = serde_json::from_value::<Operation>(json!({"method": "GET"})).unwrap_err();
    assert!(refused.to_string().contains("no `url`"), "{refused}");
}

#[test]
fn what_the_server_answers_is_what_the_client_reads() {
    let mut json_headers = HeaderMap::new();
    json_headers.insert("content-type", HeaderValue::from_static("application/json"));
    json_headers.append("set-cookie", HeaderValue::from_static("a=1"));
    json_headers.append("set-cookie", HeaderValue::from_static("b=2"));
    let mut created = OpResult::new("new", StatusCode::CREATED);
    created.body = ResultBody::classify(&json_headers, Bytes::from_static(br#"{"id": 7}"#));
    created.headers = json_headers;
    let mut text = OpResult::new("1", StatusCode::OK);
    text.headers
        .insert("content-type", HeaderValue::from_static("text/plain"));
    text.body = ResultBody::Text("hello".into());
    let mut bytes = OpResult::new("2", StatusCode::OK);
    bytes.body = ResultBody::Binary(Bytes::from_static(&[0, 0xff]));
    let response = BatchResponse::new(vec![
        created,
        text,
        bytes,
        OpResult::new("3", StatusCode::NO_CONTENT),
    ]);

    let answer = batch_core::encode(&response, Format::Native);
    assert_eq!(
        serde_json::to_vec(&response).unwrap(),
        answer.body().to_vec(),
        "serde writes exactly the endpoint's answer"
    );
    let read: BatchResponse = serde_json::from_slice(answer.body()).unwrap();
    assert_eq!(read, response);
    assert_eq!(
        serde_json::from_slice::<OpResult>(&serde_json::to_vec(&read.results[0]).unwrap()).unwrap(),
        read.results[0]
    );
}

/// Native op documents with the fields a client sets.
fn op() -> impl Strategy<Value = serde_json::Value> {
    let body = prop_oneof![
        Just(None),
        Just(Some(("body", json!({"a": [1, 2.5, "x"]})))),
        Just(Some(("body", json!("text \u{e9}")))),
        Just(Some(("body", json!(null)))),
        Just(Some(("body_base64", json!("AAEC/w==")))),
        Just(Some(("params", json!({"q": "a b", "n": [1, 2]})))),
    ];
    let content_type =
        prop::sample::select(vec![None, Some("text/plain"), Some("application/json")]);
    (
        prop::sample::select(vec!["GET", "post", "PATCH", "DELETE"]),
        prop::sample::select(vec!["/a", "/items/1?x=1", "/e"]),
        content_type,
        body,
        any::<bool>(),
        prop::option::of(1u64..10_000),
    )
        .prop_map(|(method, url, content_type, body, silent, timeout)| {
            let mut op = json!({"method": method, "url": url, "silent": silent});
            if let Some(content_type) = content_type {
                op["headers"] = json!({"content-type": content_type, "x-a": ["1", "2"]});
            }
            if let Some((field, value)) = body {
                op[field] = value;
            }
            if let Some(ms) = timeout {
                op["timeout_ms"] = json!(ms);
            }
            op
        })
}

proptest! {
    /// Once a server has read a document, writing the batch and reading it again
    /// changes nothing: serialisation loses no part of the model.
    #[test]
    fn a_decoded_batch_survives_serialisation(ops in prop::collection::vec(op(), 1..5), sequential: bool) {
        let document = json!({"ops": ops, "sequential": sequential});
        let decoded = server_decode(document.to_string().as_bytes());
        let written = serde_json::to_vec(&decoded).unwrap();
        prop_assert_eq!(server_decode(&written), decoded);
    }
}
