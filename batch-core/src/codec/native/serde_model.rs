//! The model's serde form: [`BatchRequest`], [`Operation`], [`BatchResponse`] and
//! [`OpResult`] read and write the native format's documents.
//!
//! One format, one implementation: serialising writes the document with the same
//! writer the endpoint answers with, and deserialising runs the same decoder the
//! endpoint reads batches with. Both hand the document to serde as serde_json's
//! `RawValue`, so these impls speak JSON through serde_json (`to_string`,
//! `from_slice`, `to_value`, `from_value`, ...), which is what the native format is.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::decode::decode;
use super::encode::{rest, write};
use crate::codec::json::{Entries, OneOrMany, Writer};
use crate::model::{
    BatchRequest, BatchResponse, OnError, OpResult, Operation, ResultBody, Text,
    is_json_content_type,
};

/// Hands a written document to `serializer` as the JSON it is.
fn emit<S: Serializer>(document: Vec<u8>, serializer: S) -> Result<S::Ok, S::Error> {
    let text = String::from_utf8(document).map_err(S::Error::custom)?;
    RawValue::from_string(text)
        .map_err(S::Error::custom)?
        .serialize(serializer)
}

/// The document `deserializer` holds, as bytes the decoder can share.
fn document<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
    let raw = Box::<RawValue>::deserialize(deserializer)?;
    Ok(Bytes::from(String::from(Box::<str>::from(raw))))
}

impl Serialize for BatchRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = Writer::new();
        out.raw(br#"{"ops":["#);
        for (index, op) in self.ops.iter().enumerate() {
            if index > 0 {
                out.raw(b",");
            }
            write_op(&mut out, op);
        }
        out.raw(br#"],"sequential":"#);
        out.raw(if self.sequential { b"true" } else { b"false" });
        out.raw(br#","on_error":"#);
        out.raw(match self.on_error {
            OnError::Continue => br#""continue""#,
            OnError::Stop => br#""stop""#,
        });
        out.raw(br#","include_headers":"#);
        out.raw(if self.include_headers {
            b"true"
        } else {
            b"false"
        });
        out.raw(b"}");
        emit(out.into_bytes(), serializer)
    }
}

impl<'de> Deserialize<'de> for BatchRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        decode(&document(deserializer)?).map_err(|problem| D::Error::custom(problem.detail()))
    }
}

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = Writer::new();
        write_op(&mut out, self);
        emit(out.into_bytes(), serializer)
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let op = Box::<RawValue>::deserialize(deserializer)?;
        // An op alone is read as the only op of a batch, by the batch's own rules.
        let batch = Bytes::from(format!(r#"{{"ops":[{}]}}"#, op.get()));
        let mut batch = decode(&batch).map_err(|problem| D::Error::custom(problem.detail()))?;
        batch
            .ops
            .pop()
            .ok_or_else(|| D::Error::custom("no operation"))
    }
}

/// One op as the native format writes it: only what differs from the defaults, and
/// its body as JSON when it is JSON, as text when it declares a text type, else in
/// base64.
fn write_op(out: &mut Writer, op: &Operation) {
    out.raw(br#"{"url":"#);
    out.text(&op.url);
    if let Some(id) = &op.id {
        out.raw(br#","id":"#);
        out.text(id);
    }
    if let Some(method) = &op.method {
        out.raw(br#","method":"#);
        out.string(method);
    }
    if !op.headers.is_empty() {
        out.raw(br#","headers":"#);
        write_headers(out, &op.headers);
    }
    if !op.body.is_empty() {
        write_body(out, op);
    }
    if !op.depends_on.is_empty() {
        out.raw(br#","depends_on":["#);
        for (index, id) in op.depends_on.iter().enumerate() {
            if index > 0 {
                out.raw(b",");
            }
            out.string(id);
        }
        out.raw(b"]");
    }
    if let Some(condition) = &op.condition {
        out.raw(br#","if":"#);
        out.string(condition);
    }
    if op.silent {
        out.raw(br#","silent":true"#);
    }
    if let Some(timeout) = op.timeout {
        out.raw(br#","timeout_ms":"#);
        out.raw(timeout.as_millis().to_string().as_bytes());
    }
    out.raw(b"}");
}

/// An op's headers as an object, a name set more than once as an array of its values.
fn write_headers(out: &mut Writer, headers: &[(Text, Text)]) {
    out.raw(b"{");
    let mut first = true;
    for (index, (name, _)) in headers.iter().enumerate() {
        if headers[..index].iter().any(|(earlier, _)| earlier == name) {
            continue;
        }
        if !first {
            out.raw(b",");
        }
        first = false;
        out.string(name);
        out.raw(b":");
        let mut values = headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
        let count = values.clone().count();
        if count == 1 {
            if let Some(value) = values.next() {
                out.string(value);
            }
            continue;
        }
        out.raw(b"[");
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.raw(b",");
            }
            out.string(value);
        }
        out.raw(b"]");
    }
    out.raw(b"}");
}

fn write_body(out: &mut Writer, op: &Operation) {
    let content_type = op
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.as_str());
    let json = content_type.is_none_or(is_json_content_type)
        && serde_json::from_slice::<&RawValue>(&op.body).is_ok();
    if json {
        out.raw(br#","body":"#);
        out.raw(&op.body);
        return;
    }
    match (content_type, std::str::from_utf8(&op.body)) {
        (Some(_), Ok(text)) => {
            out.raw(br#","body":"#);
            out.string(text);
        }
        _ => {
            out.raw(br#","body_base64":"#);
            out.base64(&op.body);
        }
    }
}

impl Serialize for BatchResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        emit(write(self).into_bytes(), serializer)
    }
}

/// Reads `{"results": [...]}`. What the document does not say comes back as the
/// defaults: `include_headers` is `true` and no result is `silent` (a silent success
/// reads as one with no headers and no body).
impl<'de> Deserialize<'de> for BatchResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Document {
            results: Vec<OpResult>,
        }
        let document = Document::deserialize(deserializer)?;
        Ok(BatchResponse::new(document.results))
    }
}

impl Serialize for OpResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = Writer::new();
        out.result(self.parts(), |out, result| rest(out, result, true));
        emit(out.into_bytes(), serializer)
    }
}

impl<'de> Deserialize<'de> for OpResult {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire<'a> {
            id: String,
            status: u16,
            #[serde(borrow)]
            headers: Option<Entries<OneOrMany<'a>>>,
            body: Option<Box<RawValue>>,
            body_base64: Option<String>,
        }
        let wire = Wire::deserialize(deserializer)?;
        let status = StatusCode::from_u16(wire.status).map_err(D::Error::custom)?;
        let mut headers = HeaderMap::new();
        for (name, values) in wire.headers.map(|h| h.0).unwrap_or_default() {
            let name = HeaderName::try_from(name).map_err(D::Error::custom)?;
            for value in values.into_vec() {
                let value = HeaderValue::try_from(value).map_err(D::Error::custom)?;
                headers.append(&name, value);
            }
        }
        let body = match (wire.body, wire.body_base64) {
            (_, Some(base64)) => ResultBody::Binary(Bytes::from(
                base64::engine::general_purpose::STANDARD
                    .decode(base64)
                    .map_err(D::Error::custom)?,
            )),
            (Some(raw), None) if raw.get() != "null" => body(&headers, raw),
            _ => ResultBody::Empty,
        };
        let mut result = OpResult::new(wire.id, status);
        result.headers = headers;
        result.body = body;
        Ok(result)
    }
}

/// A result's `body` member: JSON when the response said so, and a string of any
/// other content type as its text, as the encoder wrote them.
fn body(headers: &HeaderMap, raw: Box<RawValue>) -> ResultBody {
    let declared_json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(is_json_content_type);
    if !declared_json {
        if let Ok(text) = serde_json::from_str::<String>(raw.get()) {
            return ResultBody::Text(text);
        }
    }
    ResultBody::Json(Bytes::from(String::from(Box::<str>::from(raw))))
}
