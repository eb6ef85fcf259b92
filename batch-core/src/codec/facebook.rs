//! Facebook Graph batching: a form body whose `batch` field is a JSON array of
//! `{method, relative_url, body, name, depends_on, omit_response_on_success}`, and an
//! optional `include_headers=false`; answered with a JSON array of
//! `{code, headers: [{name, value}], body: "<string>"}`.
//!
//! `name` is the op's id; an op's `body` is a form-encoded string sent as it is;
//! `omit_response_on_success` answers a successful op with `null`. The response `body`
//! is a string (JSON text for JSON bodies, as Facebook does; base64 for bytes that are
//! not UTF-8).

use base64::Engine as _;
use bytes::Bytes;
use http::{Response, request::Parts};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use super::json::{self, At, OneOrMany, field, parse_document, set_default_content_type};
use super::{Codec, Field, canonical_name, rooted};
use crate::model::{BatchRequest, BatchResponse, OpResult, Operation, ResultBody};
use crate::problem::Problem;

/// The Facebook Graph format.
pub(crate) struct Facebook;

#[derive(Deserialize)]
struct RawOp<'a> {
    #[serde(borrow)]
    method: Option<&'a RawValue>,
    #[serde(borrow)]
    relative_url: Option<&'a RawValue>,
    #[serde(borrow)]
    body: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    depends_on: Option<&'a RawValue>,
    #[serde(borrow)]
    omit_response_on_success: Option<&'a RawValue>,
}

impl Codec for Facebook {
    fn name(&self) -> &'static str {
        "facebook"
    }

    fn decode(&self, _parts: &Parts, body: &Bytes) -> Result<BatchRequest, Problem> {
        let mut batch_field = None;
        let mut include_headers = true;
        for pair in body.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &[][..]),
            };
            match form_decode(name)?.as_str() {
                "batch" if batch_field.is_some() => {
                    return Err(Problem::bad_request(
                        "the form has more than one `batch` field",
                    ));
                }
                "batch" => batch_field = Some(form_decode(value)?),
                "include_headers" => {
                    include_headers = match form_decode(value)?.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(Problem::bad_request(
                                "`include_headers` must be true or false",
                            ));
                        }
                    }
                }
                // `access_token` and other fields of the Graph API have no meaning here.
                _ => {}
            }
        }
        let batch_field =
            batch_field.ok_or_else(|| Problem::bad_request("the form has no `batch` field"))?;
        let ops: Vec<&RawValue> = parse_document(batch_field.as_bytes())?;
        if ops.is_empty() {
            return Err(Problem::bad_request("`batch` is empty").at(None, Some("/batch".into())));
        }
        let ops = ops
            .into_iter()
            .enumerate()
            .map(|(index, raw)| decode_op(index, raw))
            .collect::<Result<Vec<_>, _>>()?;
        let mut batch = BatchRequest::new(ops);
        batch.include_headers = include_headers;
        Ok(batch)
    }

    fn encode(&self, response: &BatchResponse) -> Response<Bytes> {
        json::response(&Document(response))
    }

    fn pointer(&self, op: usize, field: &Field) -> Option<String> {
        Some(field.pointer("batch", op, ["relative_url", "name", "depends_on"]))
    }
}

fn decode_op(index: usize, raw: &RawValue) -> Result<Operation, Problem> {
    let at = |name| At {
        list: "batch",
        index,
        name,
    };
    let op: RawOp<'_> = field(raw, Some(index), at(""), "an object with a `relative_url`")?;
    let url = op.relative_url.ok_or_else(|| {
        Problem::bad_request(format!("operation {index} has no `relative_url`"))
            .at(Some(index), Some(at("relative_url").to_string()))
    })?;
    let mut operation = Operation {
        url: rooted(field(url, Some(index), at("relative_url"), "a string")?).into(),
        ..Operation::default()
    };
    if let Some(raw) = op.method {
        operation.method = Some(field(raw, Some(index), at("method"), "a string")?);
    }
    if let Some(raw) = op.name {
        let name: String = field(raw, Some(index), at("name"), "a non-empty string")?;
        if !name.is_empty() {
            operation.id = Some(name);
        }
    }
    if let Some(raw) = op.depends_on {
        let names: OneOrMany<'_> = field(
            raw,
            Some(index),
            at("depends_on"),
            "a name or an array of names",
        )?;
        operation.depends_on = names.into_vec();
    }
    if let Some(raw) = op.omit_response_on_success {
        operation.silent = field(
            raw,
            Some(index),
            at("omit_response_on_success"),
            "a boolean",
        )?;
    }
    if let Some(raw) = op.body.filter(|raw| raw.get() != "null") {
        let form: String = field(raw, Some(index), at("body"), "a form-encoded string")?;
        set_default_content_type(&mut operation, "application/x-www-form-urlencoded");
        operation.body = Bytes::from(form);
    }
    Ok(operation)
}

/// One `application/x-www-form-urlencoded` name or value: `+` is a space, `%XX` a
/// byte, and the result must be UTF-8. A `%` without two hex digits stays as it is.
fn form_decode(raw: &[u8]) -> Result<String, Problem> {
    let mut out = Vec::with_capacity(raw.len());
    let mut at = 0;
    while let Some(&b) = raw.get(at) {
        let hex = |i: usize| raw.get(i).and_then(|&h| char::from(h).to_digit(16));
        match b {
            b'+' => out.push(b' '),
            b'%' => match (hex(at + 1), hex(at + 2)) {
                (Some(high), Some(low)) => {
                    // Two hex digits make at most 0xff.
                    out.push(u8::try_from(high * 16 + low).unwrap_or(b'%'));
                    at += 2;
                }
                _ => out.push(b'%'),
            },
            _ => out.push(b),
        }
        at += 1;
    }
    String::from_utf8(out).map_err(|_| Problem::bad_request("the form is not UTF-8"))
}

struct Document<'a>(&'a BatchResponse);

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.results.len()))?;
        for result in &self.0.results {
            if result.silent && result.status.is_success() {
                seq.serialize_element(&())?;
            } else {
                seq.serialize_element(&Item {
                    result,
                    include_headers: self.0.include_headers,
                })?;
            }
        }
        seq.end()
    }
}

struct Item<'a> {
    result: &'a OpResult,
    include_headers: bool,
}

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let result = self.result;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("code", &result.status.as_u16())?;
        if self.include_headers {
            map.serialize_entry("headers", &NameValues(&result.headers))?;
        }
        match &result.body {
            ResultBody::Empty => map.serialize_entry("body", &())?,
            ResultBody::Json(json) => {
                map.serialize_entry("body", &String::from_utf8_lossy(json))?
            }
            ResultBody::Text(text) => map.serialize_entry("body", text)?,
            ResultBody::Binary(bytes) => map.serialize_entry(
                "body",
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            )?,
        }
        map.end()
    }
}

/// Headers as Facebook lists them: `[{"name": "Content-Type", "value": "..."}]`, one
/// entry per value.
struct NameValues<'a>(&'a http::HeaderMap);

impl Serialize for NameValues<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (name, value) in self.0 {
            let mut entry = serde_json::Map::new();
            entry.insert("name".into(), canonical_name(name.as_str()).into());
            entry.insert(
                "value".into(),
                String::from_utf8_lossy(value.as_bytes())
                    .into_owned()
                    .into(),
            );
            seq.serialize_element(&entry)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Request, StatusCode, header};

    fn decode(form: &str) -> Result<BatchRequest, Problem> {
        let (parts, ()) = Request::post("/batch").body(()).unwrap().into_parts();
        Facebook.decode(&parts, &Bytes::copy_from_slice(form.as_bytes()))
    }

    /// A form as Python's `urllib.parse.urlencode` writes it (the encoding the
    /// Facebook SDKs use): the JSON array percent-encoded, an access token beside it.
    const SDK_FORM: &str = include_str!("../../tests/fixtures/facebook/urlencode-form.txt");

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
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned()
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
        let body: serde_json::Value =
            serde_json::from_slice(Facebook.encode(&response).body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!([
                {"code": 200, "headers": [{"name": "Content-Type", "value": "application/json"}], "body": "{\"id\": 1}"},
                null,
                {"code": 404, "headers": [{"name": "Content-Type", "value": "application/json"}], "body": "{\"id\": 1}"}
            ])
        );
        response.include_headers = false;
        let body: serde_json::Value =
            serde_json::from_slice(Facebook.encode(&response).body()).unwrap();
        assert!(body[0].get("headers").is_none());
    }
}
