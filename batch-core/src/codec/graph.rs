//! Microsoft Graph / OData 4.01 JSON batching: `{"requests": [...]}` in,
//! `{"responses": [...]}` out.
//!
//! `id` is required; `dependsOn` names ids or atomicity groups; an `atomicityGroup`
//! becomes a dependency chain through its members, so they run in order and the
//! engine's 424 cascade fails the rest of the group after the first failure. A
//! `body` is JSON, or base64 when the request's content type is not JSON (Graph's
//! convention); responses embed JSON bodies and carry any other body as base64.

use std::collections::HashMap;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use http::{Response, StatusCode, request::Parts};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::json::{self, At, OneOrMany, Writer, field, parse_document};
use super::{Codec, Field, rooted};
use crate::model::is_json_content_type;
use crate::model::{BatchRequest, BatchResponse, OpResult, Operation, ResultBody};
use crate::problem::Problem;

/// The Graph / OData JSON format.
pub(crate) struct Graph;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    requests: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawRequest<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a RawValue>,
    #[serde(borrow)]
    url: Option<&'a RawValue>,
    #[serde(borrow)]
    headers: Option<&'a RawValue>,
    #[serde(borrow)]
    body: Option<&'a RawValue>,
    #[serde(borrow, rename = "dependsOn")]
    depends_on: Option<&'a RawValue>,
    #[serde(borrow, rename = "atomicityGroup")]
    atomicity_group: Option<&'a RawValue>,
}

/// Base64 as Graph and OData clients write it: standard or URL-safe alphabet, with
/// or without padding.
const BASE64: [GeneralPurpose; 2] = [
    GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    ),
    GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    ),
];

impl Codec for Graph {
    fn name(&self) -> &'static str {
        "graph"
    }

    fn decode(&self, _parts: &Parts, body: &Bytes) -> Result<BatchRequest, Problem> {
        let envelope: Envelope<'_> = parse_document(body)?;
        let requests = envelope
            .requests
            .ok_or_else(|| Problem::bad_request("the batch has no `requests` array"))?;
        let requests: Vec<&RawValue> = field(requests, None, "/requests", "an array of requests")?;
        if requests.is_empty() {
            return Err(
                Problem::bad_request("`requests` is empty").at(None, Some("/requests".into()))
            );
        }
        let mut ops = Vec::with_capacity(requests.len());
        let mut groups = Vec::with_capacity(requests.len());
        for (index, raw) in requests.into_iter().enumerate() {
            let (op, group) = decode_request(index, raw, body)?;
            ops.push(op);
            groups.push(group);
        }
        chain_groups(&mut ops, &groups)?;
        Ok(BatchRequest::new(ops))
    }

    fn encode(&self, response: &BatchResponse) -> Response<Bytes> {
        write(&response.results).into_response()
    }

    fn pointer(&self, op: usize, field: &Field) -> Option<String> {
        Some(field.pointer("requests", op, ["url", "id", "dependsOn"]))
    }
}

fn decode_request(
    index: usize,
    raw: &RawValue,
    document: &Bytes,
) -> Result<(Operation, Option<String>), Problem> {
    let at = |name| At {
        list: "requests",
        index,
        name,
    };
    let request: RawRequest<'_> = field(
        raw,
        Some(index),
        at(""),
        "an object with `id`, `method` and `url`",
    )?;
    let missing = |name: &'static str| {
        Problem::bad_request(format!("request {index} has no `{name}`"))
            .at(Some(index), Some(at(name).to_string()))
    };
    let id: String = field(
        request.id.ok_or_else(|| missing("id"))?,
        Some(index),
        at("id"),
        "a non-empty string",
    )?;
    if id.is_empty() {
        return Err(
            Problem::bad_request(format!("{} must be a non-empty string", at("id")))
                .at(Some(index), Some(at("id").to_string())),
        );
    }
    let method: String = field(
        request.method.ok_or_else(|| missing("method"))?,
        Some(index),
        at("method"),
        "a string",
    )?;
    let url: String = field(
        request.url.ok_or_else(|| missing("url"))?,
        Some(index),
        at("url"),
        "a string",
    )?;
    let mut op = Operation::new(method, rooted(url));
    op.id = Some(id);
    if let Some(raw) = request.headers {
        op.headers = json::headers(raw, index, at("headers"))?;
    }
    if let Some(raw) = request.depends_on {
        let ids: OneOrMany<'_> =
            field(raw, Some(index), at("dependsOn"), "an array of request ids")?;
        op.depends_on = ids.into_vec();
    }
    if let Some(raw) = request.body.filter(|raw| raw.get() != "null") {
        op.body = body(&mut op, raw, document).ok_or_else(|| {
            Problem::bad_request(format!(
                "{} must be base64 when the request's content type is not JSON",
                at("body")
            ))
            .at(Some(index), Some(at("body").to_string()))
        })?;
    }
    let group = match request.atomicity_group {
        Some(raw) => Some(field::<String>(
            raw,
            Some(index),
            at("atomicityGroup"),
            "a string",
        )?),
        None => None,
    };
    Ok((op, group))
}

/// A request body: base64 when the declared content type is not JSON and the body is
/// a string (`None` if it is not base64), JSON text otherwise.
fn body(op: &mut Operation, raw: &RawValue, document: &Bytes) -> Option<Bytes> {
    let binary = json::declared_content_type(op).is_some_and(|ct| !is_json_content_type(ct));
    match serde_json::from_str::<String>(raw.get()) {
        Ok(text) if binary => BASE64
            .iter()
            .find_map(|engine| engine.decode(text.as_bytes()).ok())
            .map(Bytes::from),
        _ => Some(json::json_body(op, raw, document)),
    }
}

/// Makes every atomicity group a dependency chain (each member waits for the one
/// before it) and resolves group names in `dependsOn` to the group's members.
///
/// A group name replaces itself with the group's first member in place, and the other
/// members go to the end of the list, so `dependsOn/{i}` still points at what the
/// client wrote for every `i` it wrote.
fn chain_groups(ops: &mut [Operation], groups: &[Option<String>]) -> Result<(), Problem> {
    let mut members: HashMap<String, Vec<String>> = HashMap::new();
    let mut previous_group: Option<String> = None;
    for (index, group) in groups.iter().enumerate() {
        let Some(group) = group.as_deref() else {
            previous_group = None;
            continue;
        };
        let key = group.to_lowercase();
        let id = ops[index].id.clone().unwrap_or_default();
        match members.get_mut(&key) {
            Some(list) if previous_group.as_ref() == Some(&key) => {
                let before = list.last().cloned().unwrap_or_default();
                list.push(id);
                ops[index].depends_on.push(before);
            }
            Some(_) => {
                return Err(Problem::bad_request(format!(
                    "the members of atomicity group {group:?} must be adjacent"
                ))
                .at(
                    Some(index),
                    Some(format!("/requests/{index}/atomicityGroup")),
                ));
            }
            None => {
                members.insert(key.clone(), vec![id]);
            }
        }
        previous_group = Some(key);
    }
    if members.is_empty() {
        return Ok(());
    }
    for (index, op) in ops.iter_mut().enumerate() {
        let id = op.id.as_deref().unwrap_or_default().to_lowercase();
        if members.contains_key(&id) {
            return Err(Problem::bad_request(format!(
                "request id {id:?} is also the name of an atomicity group"
            ))
            .at(Some(index), Some(format!("/requests/{index}/id"))));
        }
        let mut extra = Vec::new();
        for name in &mut op.depends_on {
            if let Some(list) = members.get(&name.to_lowercase()) {
                *name = list[0].clone();
                extra.extend(list[1..].iter().cloned());
            }
        }
        op.depends_on.extend(extra);
    }
    Ok(())
}

/// `{"responses": [...]}`, each `{"id", "status", "headers", "body"}`: headers in
/// canonical case, JSON bodies embedded, any other body in base64, and no body on a
/// 204 or 304 (the Graph SDK refuses one there).
fn write(results: &[OpResult]) -> Writer {
    Writer::results("responses", results, |out, result| {
        out.raw(br#","headers":"#);
        out.headers(&result.headers, true);
        if [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED].contains(&result.status) {
            return;
        }
        match &result.body {
            ResultBody::Empty => {}
            ResultBody::Json(json) => {
                out.raw(br#","body":"#);
                out.raw(json);
            }
            body @ (ResultBody::Text(_) | ResultBody::Binary(_)) => {
                out.raw(br#","body":"#);
                out.base64(body.as_bytes());
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Request, header};

    fn decode(body: &str) -> Result<BatchRequest, Problem> {
        let (parts, ()) = Request::post("/batch").body(()).unwrap().into_parts();
        Graph.decode(&parts, &Bytes::copy_from_slice(body.as_bytes()))
    }

    /// What `@microsoft/microsoft-graph-client`'s `BatchRequestContent` sent to the
    /// demo server (`clients/graph-js`), byte for byte.
    const SDK_REQUEST: &str = include_str!("../../tests/fixtures/graph/sdk-request.json");

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
            vec![("content-type".to_owned(), "application/json".to_owned())]
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
        OpResult {
            id: format!("r{status}"),
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body,
            silent: false,
        }
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
        let http = Graph.encode(&response);
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
}
