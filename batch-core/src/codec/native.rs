//! The native JSON format (`{"ops": [...]}` in, `{"results": [...]}` out), including
//! the batch_api gem's subset (lower-case methods, `params`/`args`, `silent`).

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Response, request::Parts};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use super::json::{
    self, At, Entries, HeaderObject, OneOrMany, field, headers, json_body, parse_document,
    serialize_body, set_default_content_type, shared,
};
use super::{Codec, Field, pointer_token};
use crate::model::{BatchRequest, BatchResponse, OnError, OpResult, Operation};
use crate::problem::Problem;

/// The native format.
pub(crate) struct Native;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    ops: Option<&'a RawValue>,
    #[serde(borrow)]
    sequential: Option<&'a RawValue>,
    #[serde(borrow)]
    on_error: Option<&'a RawValue>,
    #[serde(borrow)]
    include_headers: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawOp<'a> {
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
    #[serde(borrow)]
    body_base64: Option<&'a RawValue>,
    #[serde(borrow, alias = "args")]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    depends_on: Option<&'a RawValue>,
    #[serde(borrow)]
    silent: Option<&'a RawValue>,
    #[serde(borrow)]
    timeout_ms: Option<&'a RawValue>,
}

impl Codec for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn decode(&self, _parts: &Parts, body: &Bytes) -> Result<BatchRequest, Problem> {
        let envelope: Envelope<'_> = parse_document(body)?;
        let ops = envelope
            .ops
            .ok_or_else(|| Problem::bad_request("the batch has no `ops` array"))?;
        let ops: Vec<&RawValue> = field(ops, None, "/ops", "an array of operations")?;
        if ops.is_empty() {
            return Err(Problem::bad_request("`ops` is empty").at(None, Some("/ops".into())));
        }
        let mut batch = BatchRequest::new(Vec::with_capacity(ops.len()));
        if let Some(raw) = envelope.sequential {
            batch.sequential = field(raw, None, "/sequential", "a boolean")?;
        }
        if let Some(raw) = envelope.include_headers {
            batch.include_headers = field(raw, None, "/include_headers", "a boolean")?;
        }
        if let Some(raw) = envelope.on_error {
            let expected = r#""continue" or "stop""#;
            batch.on_error = match field::<&str>(raw, None, "/on_error", expected)? {
                "continue" => OnError::Continue,
                "stop" => OnError::Stop,
                _ => {
                    return Err(
                        Problem::bad_request(format!("/on_error must be {expected}"))
                            .at(None, Some("/on_error".into())),
                    );
                }
            };
        }
        for (index, raw) in ops.into_iter().enumerate() {
            batch.ops.push(decode_op(index, raw, body)?);
        }
        Ok(batch)
    }

    fn encode(&self, response: &BatchResponse) -> Response<Bytes> {
        json::response(&Document { results: response })
    }

    fn pointer(&self, op: usize, field: &Field) -> Option<String> {
        Some(field.pointer("ops", op, ["url", "id", "depends_on"]))
    }
}

fn decode_op(index: usize, raw: &RawValue, document: &Bytes) -> Result<Operation, Problem> {
    let at = |name| At {
        list: "ops",
        index,
        name,
    };
    let op: RawOp<'_> = field(raw, Some(index), at(""), "an object with a `url`")?;
    let url = op.url.ok_or_else(|| {
        Problem::bad_request(format!("operation {index} has no `url`"))
            .at(Some(index), Some(at("url").to_string()))
    })?;
    let mut operation = Operation {
        url: field(url, Some(index), at("url"), "a string")?,
        ..Operation::default()
    };
    if let Some(raw) = op.id {
        let id: String = field(raw, Some(index), at("id"), "a non-empty string")?;
        if id.is_empty() {
            return Err(
                Problem::bad_request(format!("{} must be a non-empty string", at("id")))
                    .at(Some(index), Some(at("id").to_string())),
            );
        }
        operation.id = Some(id);
    }
    if let Some(raw) = op.method {
        operation.method = Some(field(raw, Some(index), at("method"), "a string")?);
    }
    if let Some(raw) = op.headers {
        operation.headers = headers(raw, index, at("headers"))?;
    }
    if let Some(raw) = op.depends_on {
        let ids: OneOrMany<'_> = field(
            raw,
            Some(index),
            at("depends_on"),
            "an id or an array of ids",
        )?;
        operation.depends_on = ids.into_vec();
    }
    if let Some(raw) = op.silent {
        operation.silent = field(raw, Some(index), at("silent"), "a boolean")?;
    }
    if let Some(raw) = op.timeout_ms {
        let ms: u64 = field(raw, Some(index), at("timeout_ms"), "a positive integer")?;
        if ms == 0 {
            return Err(Problem::bad_request(format!(
                "{} must be a positive integer",
                at("timeout_ms")
            ))
            .at(Some(index), Some(at("timeout_ms").to_string())));
        }
        operation.timeout = Some(Duration::from_millis(ms));
    }
    let method_has_query_params = operation.method.as_deref().is_none_or(|m| {
        ["GET", "HEAD", "DELETE"]
            .iter()
            .any(|q| q.eq_ignore_ascii_case(m))
    });
    let body = match (op.body, op.body_base64) {
        (Some(_), Some(_)) => {
            return Err(Problem::bad_request(format!(
                "operation {index} has both `body` and `body_base64`"
            ))
            .at(Some(index), Some(at("body_base64").to_string())));
        }
        (Some(raw), None) if raw.get() != "null" => Some(json_body(&mut operation, raw, document)),
        (_, Some(raw)) => {
            let text: &str = field(raw, Some(index), at("body_base64"), "a base64 string")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| {
                    Problem::bad_request(format!("{} is not valid base64", at("body_base64")))
                        .at(Some(index), Some(at("body_base64").to_string()))
                })?;
            set_default_content_type(&mut operation, "application/octet-stream");
            Some(Bytes::from(bytes))
        }
        _ => None,
    };
    if let Some(raw) = op.params {
        let pointer = at("params").to_string();
        let params: Entries<serde_json::Value> = field(raw, Some(index), &pointer, "an object")?;
        if method_has_query_params {
            let query =
                encode_query(&params).map_err(|key| {
                    Problem::bad_request(format!(
                    "{pointer}/{key} must be a string, number, boolean, null or an array of them"
                ))
                .at(Some(index), Some(format!("{pointer}/{}", pointer_token(&key))))
                })?;
            if !query.is_empty() {
                let separator = if operation.url.contains('?') {
                    '&'
                } else {
                    '?'
                };
                operation.url.push(separator);
                operation.url.push_str(&query);
            }
        } else if body.is_none() {
            set_default_content_type(&mut operation, "application/json");
            operation.body = shared(document, raw.get());
        }
    }
    if let Some(body) = body {
        operation.body = body;
    }
    Ok(operation)
}

/// `params` as a query string; on a value that has no query form, the offending key.
fn encode_query(params: &Entries<serde_json::Value>) -> Result<String, String> {
    use serde_json::Value;
    let mut query = String::new();
    let mut push = |key: &str, value: &Value| -> Result<(), ()> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            Value::Array(_) | Value::Object(_) => return Err(()),
        };
        if !query.is_empty() {
            query.push('&');
        }
        percent_encode_into(&mut query, key);
        query.push('=');
        percent_encode_into(&mut query, &text);
        Ok(())
    };
    for (key, value) in &params.0 {
        let pushed = match value {
            serde_json::Value::Array(items) => items.iter().try_for_each(|item| push(key, item)),
            other => push(key, other),
        };
        pushed.map_err(|()| key.clone())?;
    }
    Ok(query)
}

fn percent_encode_into(out: &mut String, text: &str) {
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 0xf)]));
        }
    }
}

struct Document<'a> {
    results: &'a BatchResponse,
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        let results: Vec<NativeResult<'_>> = self
            .results
            .results
            .iter()
            .map(|result| NativeResult {
                result,
                include_headers: self.results.include_headers,
            })
            .collect();
        map.serialize_entry("results", &results)?;
        map.end()
    }
}

struct NativeResult<'a> {
    result: &'a OpResult,
    include_headers: bool,
}

impl Serialize for NativeResult<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let result = self.result;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &result.id)?;
        map.serialize_entry("status", &result.status.as_u16())?;
        if result.silent && result.status.is_success() {
            return map.end();
        }
        if self.include_headers {
            let headers = HeaderObject {
                headers: &result.headers,
                canonical: false,
            };
            map.serialize_entry("headers", &headers)?;
        }
        serialize_body(&mut map, &result.body)?;
        map.end()
    }
}
