use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::model::{BatchRequest, BatchResponse, OpResult, ResultBody};
use crate::problem::Problem;

fn decode(body: &str) -> Result<BatchRequest, Problem> {
    super::decode(&Bytes::copy_from_slice(body.as_bytes()))
}

/// What `@microsoft/microsoft-graph-client`'s `BatchRequestContent` sent to the
/// demo server (`clients/graph-js`), byte for byte.
const SDK_REQUEST: &str = include_str!("../../../tests/fixtures/graph/sdk-request.json");

#[test]
fn decodes_what_the_graph_sdk_sends() {
    let batch = decode(SDK_REQUEST).unwrap();
    let summary: Vec<(&str, &str, &str)> = batch
        .ops
        .iter()
        .map(|op| {
            (
                op.id.as_deref().unwrap(),
                op.method.as_deref().unwrap(),
                op.url.as_str(),
            )
        })
        .collect();
    assert_eq!(summary.len(), 6, "{summary:?}");
    assert!(summary.iter().all(|(_, _, url)| url.starts_with('/')));
    let post = batch
        .ops
        .iter()
        .find(|op| op.method.as_deref() == Some("POST"))
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&post.body).unwrap()["name"],
        "from graph sdk"
    );
    assert!(batch.ops.iter().any(|op| !op.depends_on.is_empty()));
}

#[test]
fn id_method_and_url_are_required() {
    for (body, pointer) in [
        (
            r#"{"requests": [{"method": "GET", "url": "/a"}]}"#,
            "/requests/0/id",
        ),
        (
            r#"{"requests": [{"id": "1", "url": "/a"}]}"#,
            "/requests/0/method",
        ),
        (
            r#"{"requests": [{"id": "1", "method": "GET"}]}"#,
            "/requests/0/url",
        ),
        (
            r#"{"requests": [{"id": "", "method": "GET", "url": "/a"}]}"#,
            "/requests/0/id",
        ),
        (
            r#"{"requests": [{"id": 1, "method": "GET", "url": "/a"}]}"#,
            "/requests/0/id",
        ),
    ] {
        let problem = decode(body).unwrap_err();
        assert_eq!(problem.status(), 400, "{body}");
        assert_eq!(problem.pointer(), Some(pointer), "{body}");
    }
    assert_eq!(decode(r#"{"requests": []}"#).unwrap_err().status(), 400);
    assert_eq!(decode(r#"{"requests": {}}"#).unwrap_err().status(), 400);
}

#[test]
fn relative_urls_and_bodies_translate() {
    let batch = decode(
        r#"{"requests": [
        {"id": "1", "method": "POST", "url": "me/items", "body": {"a": 1}},
        {"id": "2", "method": "PUT", "url": "/f", "headers": {"Content-Type": "image/png"}, "body": "AAEC_w"},
        {"id": "3", "method": "PUT", "url": "/f", "headers": {"content-type": "text/plain"}, "body": "not base64!"}
    ]}"#,
    );
    let problem = batch.unwrap_err();
    assert_eq!(problem.pointer(), Some("/requests/2/body"));
    let batch = decode(
        r#"{"requests": [
        {"id": "1", "method": "POST", "url": "me/items", "body": {"a": 1}},
        {"id": "2", "method": "PUT", "url": "/f", "headers": {"Content-Type": "image/png"}, "body": "AAEC_w"}
    ]}"#,
    )
    .unwrap();
    assert_eq!(batch.ops[0].url, "/me/items");
    assert_eq!(batch.ops[0].body.as_ref(), br#"{"a": 1}"#);
    assert_eq!(
        batch.ops[0].headers,
        vec![("content-type".into(), "application/json".into())]
    );
    assert_eq!(batch.ops[1].body.as_ref(), [0, 1, 2, 255]);
}

#[test]
fn atomicity_groups_become_chains_and_group_names_resolve() {
    let batch = decode(
        r#"{"requests": [
        {"id": "a", "method": "POST", "url": "/x", "atomicityGroup": "g"},
        {"id": "b", "method": "POST", "url": "/x", "atomicityGroup": "G"},
        {"id": "c", "method": "POST", "url": "/x", "atomicityGroup": "g"},
        {"id": "d", "method": "GET", "url": "/x", "dependsOn": ["g"]}
    ]}"#,
    )
    .unwrap();
    let deps: Vec<&[String]> = batch.ops.iter().map(|op| &op.depends_on[..]).collect();
    assert_eq!(deps[0], [] as [String; 0]);
    assert_eq!(deps[1], ["a"]);
    assert_eq!(deps[2], ["b"]);
    assert_eq!(deps[3], ["a", "b", "c"]);
    let split = decode(
        r#"{"requests": [
        {"id": "a", "method": "GET", "url": "/x", "atomicityGroup": "g"},
        {"id": "b", "method": "GET", "url": "/x"},
        {"id": "c", "method": "GET", "url": "/x", "atomicityGroup": "g"}
    ]}"#,
    )
    .unwrap_err();
    assert_eq!(split.pointer(), Some("/requests/2/atomicityGroup"));
    let clash = decode(
        r#"{"requests": [
        {"id": "g", "method": "GET", "url": "/x", "atomicityGroup": "g"}
    ]}"#,
    )
    .unwrap_err();
    assert_eq!(clash.status(), 400);
}

fn result(status: u16, content_type: Option<&'static str>, body: &[u8]) -> OpResult {
    let mut headers = HeaderMap::new();
    if let Some(ct) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    let body = ResultBody::classify(&headers, Bytes::copy_from_slice(body));
    let mut result = OpResult::new(format!("r{status}"), StatusCode::from_u16(status).unwrap());
    result.headers = headers;
    result.body = body;
    result
}

#[test]
fn responses_embed_json_base64_the_rest_and_omit_null_bodies() {
    let response = BatchResponse {
        results: vec![
            result(200, Some("application/json"), br#"{"id": 1}"#),
            result(200, Some("text/plain"), b"hello"),
            result(204, None, b""),
            result(304, Some("application/json"), b""),
        ],
        include_headers: true,
        layout: Default::default(),
    };
    let http = super::encode(&response);
    assert_eq!(http.headers()["content-type"], "application/json");
    let json: serde_json::Value = serde_json::from_slice(http.body()).unwrap();
    let responses = json["responses"].as_array().unwrap();
    assert_eq!(responses[0]["id"], "r200");
    assert_eq!(responses[0]["headers"]["Content-Type"], "application/json");
    assert_eq!(responses[0]["body"], serde_json::json!({"id": 1}));
    assert_eq!(responses[1]["body"], "aGVsbG8=");
    assert!(responses[2].get("body").is_none());
    assert!(responses[3].get("body").is_none());
    assert_eq!(responses[3]["status"], 304);
}
