//! The aggregate array (Flask-Aggregator): a JSON array of GET paths in, one JSON
//! object from path to body out.
//!
//! Only bodies are answered, as the format defines: JSON embedded, text as a string,
//! other bytes as a base64 string, no body as `null`. A path listed twice runs once
//! and keeps its first place.

use std::collections::HashSet;

use base64::Engine as _;
use bytes::Bytes;
use http::{Response, request::Parts};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::json::{self, RawJson, field, parse_document};
use super::{Codec, Field};
use crate::model::{BatchRequest, BatchResponse, Operation, ResultBody};
use crate::problem::Problem;

/// The aggregate format.
pub(crate) struct Aggregate;

impl Codec for Aggregate {
    fn name(&self) -> &'static str {
        "aggregate"
    }

    fn decode(&self, _parts: &Parts, body: &Bytes) -> Result<BatchRequest, Problem> {
        let paths: Vec<&RawValue> = parse_document(body)?;
        if paths.is_empty() {
            return Err(Problem::bad_request("the array of paths is empty"));
        }
        let mut seen = HashSet::with_capacity(paths.len());
        let mut ops = Vec::with_capacity(paths.len());
        let mut labels = Vec::with_capacity(paths.len());
        for (index, raw) in paths.into_iter().enumerate() {
            let path: String = field(raw, Some(index), format!("/{index}"), "a path string")?;
            if seen.insert(path.clone()) {
                ops.push(Operation::new("GET", path.clone()));
                labels.push(Some(path));
            }
        }
        let mut batch = BatchRequest::new(ops);
        batch.layout.labels = labels;
        Ok(batch)
    }

    fn encode(&self, response: &BatchResponse) -> Response<Bytes> {
        json::response(&Document(response))
    }

    /// Ops are the distinct paths, so an op's index is not a position in the array.
    fn pointer(&self, _op: usize, _field: &Field) -> Option<String> {
        None
    }
}

struct Document<'a>(&'a BatchResponse);

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let response = self.0;
        let mut map = serializer.serialize_map(Some(response.results.len()))?;
        for (index, result) in response.results.iter().enumerate() {
            let path = response
                .layout
                .labels
                .get(index)
                .and_then(Option::as_deref)
                .unwrap_or(&result.id);
            match &result.body {
                ResultBody::Empty => map.serialize_entry(path, &())?,
                ResultBody::Json(json) => map.serialize_entry(path, &RawJson(json))?,
                ResultBody::Text(text) => map.serialize_entry(path, text)?,
                ResultBody::Binary(bytes) => map.serialize_entry(
                    path,
                    &base64::engine::general_purpose::STANDARD.encode(bytes),
                )?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Layout, OpResult};
    use http::{HeaderMap, HeaderValue, Request, StatusCode, header};

    fn decode(body: &str) -> Result<BatchRequest, Problem> {
        let (parts, ()) = Request::post("/aggregate").body(()).unwrap().into_parts();
        Aggregate.decode(&parts, &Bytes::copy_from_slice(body.as_bytes()))
    }

    /// An aggregate request with a repeated path, as `curl --data @file` posts it.
    const README_REQUEST: &str = include_str!("../../tests/fixtures/aggregate/readme-request.json");

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
            id: id.into(),
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
                labels: ["/z", "/a\"q", "/b", "/e"]
                    .map(|p| Some(p.to_owned()))
                    .to_vec(),
                groups: Vec::new(),
            },
        };
        let body = Aggregate.encode(&response);
        assert_eq!(
            std::str::from_utf8(body.body()).unwrap(),
            r#"{"/z":[1],"/a\"q":"hi","/b":"/w==","/e":null}"#
        );
    }
}
