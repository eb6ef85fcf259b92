use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::model::{BatchRequest, BatchResponse, Format, Layout, OpResult, ResultBody};
use crate::problem::Problem;

fn decode(body: &str) -> Result<BatchRequest, Problem> {
    super::decode(&Bytes::copy_from_slice(body.as_bytes()))
}

/// An aggregate request with a repeated path, as `curl --data @file` posts it.
const README_REQUEST: &str = include_str!("../../../tests/fixtures/aggregate/readme-request.json");

#[test]
fn paths_become_gets_once_each() {
    let batch = decode(README_REQUEST).unwrap();
    let urls: Vec<&str> = batch.ops.iter().map(|op| op.url.as_str()).collect();
    assert_eq!(urls, ["/items/1", "/items?limit=2", "/health"]);
    assert!(
        batch
            .ops
            .iter()
            .all(|op| op.method.as_deref() == Some("GET"))
    );
    assert_eq!(batch.layout.labels[1].as_deref(), Some("/items?limit=2"));
}

#[test]
fn malformed_arrays_are_400() {
    for body in ["[]", "[1]", r#"["/a", null]"#, r#"["/a""#, r#"{"0": "/a"}"#] {
        assert_eq!(decode(body).unwrap_err().status(), 400, "{body}");
    }
}

#[test]
fn answers_map_paths_to_bodies_in_order() {
    let mut json = HeaderMap::new();
    json.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let result = |id: &str, body: ResultBody| OpResult {
        id: id.to_owned().into(),
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body,
        silent: false,
    };
    let response = BatchResponse {
        results: vec![
            result("0", ResultBody::classify(&json, Bytes::from_static(b"[1]"))),
            result("1", ResultBody::Text("hi".into())),
            result("2", ResultBody::Binary(Bytes::from_static(&[0xff]))),
            result("3", ResultBody::Empty),
        ],
        include_headers: true,
        layout: Layout {
            format: Format::Aggregate,
            labels: ["/z", "/a\"q", "/b", "/e"]
                .map(|p| Some(p.to_owned()))
                .to_vec(),
            groups: Vec::new(),
        },
    };
    let body = super::encode(&response);
    assert_eq!(
        std::str::from_utf8(body.body()).unwrap(),
        r#"{"/z":[1],"/a\"q":"hi","/b":"/w==","/e":null}"#
    );
}
