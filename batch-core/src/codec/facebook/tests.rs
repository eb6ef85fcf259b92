use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::decode::form_decode;
use crate::model::{BatchRequest, BatchResponse, OpResult, ResultBody};
use crate::problem::Problem;

fn decode(form: &str) -> Result<BatchRequest, Problem> {
    super::decode(&Bytes::copy_from_slice(form.as_bytes()))
}

/// A form as Python's `urllib.parse.urlencode` writes it (the encoding the
/// Facebook SDKs use): the JSON array percent-encoded, an access token beside it.
const SDK_FORM: &str = include_str!("../../../tests/fixtures/facebook/urlencode-form.txt");

#[test]
fn decodes_a_form_encoded_batch() {
    let batch = decode(SDK_FORM.trim_end()).unwrap();
    assert!(!batch.include_headers);
    let ops = &batch.ops;
    assert_eq!(ops.len(), 3);
    assert_eq!(ops[0].id.as_deref(), Some("create"));
    assert_eq!(ops[0].method.as_deref(), Some("POST"));
    assert_eq!(ops[0].url, "/items");
    assert_eq!(ops[0].body.as_ref(), b"name=pen+%26+ink");
    assert_eq!(
        ops[0].headers,
        vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into()
        )]
    );
    assert!(ops[0].silent);
    assert_eq!(ops[1].url, "/items/1?fields=name");
    assert_eq!(ops[1].depends_on, ["create"]);
    assert_eq!(ops[2].method, None, "GET by default");
}

#[test]
fn malformed_forms_are_400() {
    for form in [
        "",
        "access_token=x",
        "batch=%7B%7D",
        "batch=%5B%5D",
        "batch=not-json",
        "batch=%5B%7B%22method%22%3A%22GET%22%7D%5D",
        "batch=%5B%5D&batch=%5B%5D",
        "batch=%5B%7B%22relative_url%22%3A%22%2Fa%22%7D%5D&include_headers=maybe",
        "batch=%5B%7B%22relative_url%22%3A%22%2Fa%22%2C%22body%22%3A%7B%7D%7D%5D",
        "batch=%FF",
    ] {
        assert_eq!(decode(form).unwrap_err().status(), 400, "{form}");
    }
}

#[test]
fn form_decoding() {
    assert_eq!(form_decode(b"a+b%20c%2").unwrap(), "a b c%2");
    assert_eq!(form_decode(b"%e2%82%ac").unwrap(), "\u{20ac}");
    assert!(form_decode(b"%ff").is_err());
}

#[test]
fn responses_are_code_name_value_headers_and_string_bodies() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let json = ResultBody::classify(&headers, Bytes::from_static(br#"{"id": 1}"#));
    let ok = OpResult {
        id: "a".into(),
        status: StatusCode::OK,
        headers: headers.clone(),
        body: json.clone(),
        silent: false,
    };
    let omitted = OpResult {
        silent: true,
        ..ok.clone()
    };
    let failed = OpResult {
        status: StatusCode::NOT_FOUND,
        silent: true,
        ..ok.clone()
    };
    let mut response = BatchResponse {
        results: vec![ok, omitted, failed],
        include_headers: true,
        layout: Default::default(),
    };
    let body: serde_json::Value = serde_json::from_slice(super::encode(&response).body()).unwrap();
    assert_eq!(
        body,
        serde_json::json!([
            {"code": 200, "headers": [{"name": "Content-Type", "value": "application/json"}], "body": "{\"id\": 1}"},
            null,
            {"code": 404, "headers": [{"name": "Content-Type", "value": "application/json"}], "body": "{\"id\": 1}"}
        ])
    );
    response.include_headers = false;
    let body: serde_json::Value = serde_json::from_slice(super::encode(&response).body()).unwrap();
    assert!(body[0].get("headers").is_none());
}
