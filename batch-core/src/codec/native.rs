//! The native JSON format (`{"ops": [...]}` in, `{"results": [...]}` out), including
//! the batch_api gem's subset (lower-case methods, `params`/`args`, `silent`).

mod typed;

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Response, request::Parts};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::json::{
    self, At, Entries, Writer, check_depth, field, json_body, optional, parse_document,
    set_default_content_type,
};
use super::{Codec, Field, pointer_token};
use crate::model::{BatchRequest, BatchResponse, OnError, Operation, Target, shared};
use crate::problem::Problem;
use typed::TypedOp;

/// The native format.
pub(crate) struct Native;

/// The batch with each value left unparsed, to find which one is of the wrong type.
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

/// One op with each value left unparsed.
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
        // A valid batch is parsed once, straight into its operations. Only a batch
        // that fails that pass is read again value by value, to say which value is
        // wrong and where; both passes share every check beyond types.
        let ops = check_depth(body)?;
        let Ok(typed) = typed::parse(body, ops) else {
            return explain(body);
        };
        let ops = typed.ops.ok_or_else(no_ops)?;
        if ops.as_ref().is_ok_and(Vec::is_empty) {
            return Err(empty_ops());
        }
        let mut batch = BatchRequest::new(Vec::new());
        apply(&mut batch, typed.options)?;
        batch.ops = ops?;
        Ok(batch)
    }

    fn encode(&self, response: &BatchResponse) -> Response<Bytes> {
        write(response).into_response()
    }

    fn pointer(&self, op: usize, field: &Field) -> Option<String> {
        Some(field.pointer("ops", op, ["url", "id", "depends_on"]))
    }
}

/// The batch-level options, typed.
struct Options {
    sequential: Option<bool>,
    on_error: Option<String>,
    include_headers: Option<bool>,
}

/// Decodes a batch the typed pass refused, value by value, so the error names the
/// first value that is wrong and its JSON pointer.
fn explain(body: &Bytes) -> Result<BatchRequest, Problem> {
    let envelope: Envelope<'_> = parse_document(body)?;
    let ops = optional::<Vec<&RawValue>>(envelope.ops, None, "/ops", "an array of operations")?;
    let options = Options {
        sequential: optional(envelope.sequential, None, "/sequential", "a boolean")?,
        include_headers: optional(
            envelope.include_headers,
            None,
            "/include_headers",
            "a boolean",
        )?,
        on_error: optional(envelope.on_error, None, "/on_error", ON_ERROR)?,
    };
    let ops = ops.ok_or_else(no_ops)?;
    if ops.is_empty() {
        return Err(empty_ops());
    }
    let mut batch = BatchRequest::new(Vec::with_capacity(ops.len()));
    apply(&mut batch, options)?;
    for (index, raw) in ops.into_iter().enumerate() {
        let op = explain_op(index, raw)?;
        batch.ops.push(build_op(index, op, body)?);
    }
    Ok(batch)
}

const ON_ERROR: &str = r#""continue" or "stop""#;

fn no_ops() -> Problem {
    Problem::bad_request("the batch has no `ops` array")
}

fn empty_ops() -> Problem {
    Problem::bad_request("`ops` is empty").at(None, Some("/ops".into()))
}

/// Sets the batch's options.
fn apply(batch: &mut BatchRequest, options: Options) -> Result<(), Problem> {
    batch.sequential = options.sequential.unwrap_or(batch.sequential);
    batch.include_headers = options.include_headers.unwrap_or(batch.include_headers);
    if let Some(on_error) = options.on_error {
        batch.on_error = match on_error.as_str() {
            "continue" => OnError::Continue,
            "stop" => OnError::Stop,
            _ => {
                return Err(
                    Problem::bad_request(format!("/on_error must be {ON_ERROR}"))
                        .at(None, Some("/on_error".into())),
                );
            }
        };
    }
    Ok(())
}

/// Where field `name` of op `index` sits.
fn at(index: usize, name: &'static str) -> At {
    At {
        list: "ops",
        index,
        name,
    }
}

/// Types one op value by value, failing at the first value of the wrong type.
fn explain_op(index: usize, raw: &RawValue) -> Result<TypedOp<'_>, Problem> {
    let at = |name| at(index, name);
    let op: RawOp<'_> = field(raw, Some(index), at(""), "an object with a `url`")?;
    let op_index = Some(index);
    Ok(TypedOp {
        url: optional(op.url, op_index, at("url"), "a string")?,
        id: optional(op.id, op_index, at("id"), "a non-empty string")?,
        method: optional(op.method, op_index, at("method"), "a string")?,
        headers: optional(op.headers, op_index, at("headers"), json::HEADERS)?,
        depends_on: optional(
            op.depends_on,
            op_index,
            at("depends_on"),
            "an id or an array of ids",
        )?,
        silent: optional(op.silent, op_index, at("silent"), "a boolean")?,
        timeout_ms: optional(
            op.timeout_ms,
            op_index,
            at("timeout_ms"),
            "a positive integer",
        )?,
        body_base64: optional(
            op.body_base64,
            op_index,
            at("body_base64"),
            "a base64 string",
        )?,
        body: op.body,
        params: op.params,
    })
}

/// The operation from its typed fields: the checks that are not about types.
fn build_op(index: usize, op: TypedOp<'_>, document: &Bytes) -> Result<Operation, Problem> {
    let at = |name| at(index, name);
    let invalid = |name, must: &str| {
        Problem::bad_request(format!("{} must be {must}", at(name)))
            .at(Some(index), Some(at(name).to_string()))
    };
    let url = op.url.ok_or_else(|| {
        Problem::bad_request(format!("operation {index} has no `url`"))
            .at(Some(index), Some(at("url").to_string()))
    })?;
    let mut operation = Operation {
        url: match url {
            Cow::Borrowed(url) => Target::shared(document, url),
            Cow::Owned(url) => url.into(),
        },
        ..Operation::default()
    };
    if let Some(id) = op.id {
        if id.is_empty() {
            return Err(invalid("id", "a non-empty string"));
        }
        operation.id = Some(id);
    }
    operation.method = op.method;
    if let Some(headers) = op.headers {
        operation.headers = json::header_list(headers);
    }
    if let Some(ids) = op.depends_on {
        operation.depends_on = ids.into_vec();
    }
    operation.silent = op.silent.unwrap_or(false);
    if let Some(ms) = op.timeout_ms {
        if ms == 0 {
            return Err(invalid("timeout_ms", "a positive integer"));
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
        (_, Some(text)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
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
                let url = operation.url.as_str();
                let separator = if url.contains('?') { '&' } else { '?' };
                operation.url = format!("{url}{separator}{query}").into();
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

/// `{"results": [...]}`, each result `{"id", "status", "headers", "body"}`, headers
/// only when the batch asked for them and only id and status for a silent success.
fn write(response: &BatchResponse) -> Writer {
    Writer::results("results", &response.results, |out, result| {
        if result.silent && result.status.is_success() {
            return;
        }
        if response.include_headers {
            out.raw(br#","headers":"#);
            out.headers(&result.headers, false);
        }
        out.raw(b",");
        out.body(&result.body);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// Values of every JSON type, including strings with escapes (which cannot be
    /// borrowed) and the shapes each field accepts.
    fn value() -> impl Strategy<Value = Value> {
        prop::sample::select(vec![
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(20),
            json!(-1),
            json!(1.5),
            json!(""),
            json!("a"),
            json!("/items/1"),
            json!("/items/\u{e9}?q=\"x\""),
            json!("continue"),
            json!("stop"),
            json!("aGk="),
            json!("a\\b"),
            json!("POST"),
            json!(["a", "b"]),
            json!([1]),
            json!([]),
            json!({"x-a": "1", "x-b": ["2", "3"]}),
            json!({"Content-Type": "text/plain"}),
            json!({"q": 1, "r": [true, "s"], "t": null}),
            json!({"x": {"y": 1}}),
            json!({}),
        ])
    }

    /// A value for `key`: mostly one of the type the field takes, so that many
    /// documents pass the typed pass, sometimes any value at all.
    fn field_value(key: &'static str) -> impl Strategy<Value = Value> {
        let valid = match key {
            "id" | "method" | "url" | "body_base64" | "on_error" => {
                vec![
                    json!("a"),
                    json!(""),
                    json!("/items/1"),
                    json!("a\\b"),
                    json!("stop"),
                ]
            }
            "headers" => vec![
                json!({"x-a": "1", "x-b": ["2", "3"]}),
                json!({"Content-Type": "text/plain"}),
            ],
            "depends_on" => vec![json!("a"), json!(["a", "b"]), json!([])],
            "silent" | "sequential" | "include_headers" => {
                vec![json!(true), json!(false), json!(null)]
            }
            "timeout_ms" => vec![json!(20), json!(0)],
            _ => vec![json!({"q": 1, "r": [true, "s"]}), json!("s"), json!(null)],
        };
        prop_oneof![12 => prop::sample::select(valid), 1 => value()]
    }

    fn object(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
        prop::collection::vec(
            prop::sample::select(keys).prop_flat_map(|k| (Just(k), field_value(k))),
            0..6,
        )
        .prop_map(|entries| {
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            )
        })
    }

    const OP_KEYS: &[&str] = &[
        "id",
        "method",
        "url",
        "url",
        "url",
        "headers",
        "body",
        "body_base64",
        "params",
        "args",
        "depends_on",
        "silent",
        "timeout_ms",
        "other",
    ];

    fn document() -> impl Strategy<Value = Value> {
        let ops = prop::collection::vec(prop_oneof![12 => object(OP_KEYS), 1 => value()], 0..4);
        (
            object(&["sequential", "on_error", "include_headers", "other"]),
            prop_oneof![
                12 => ops.prop_map(Value::Array),
                1 => value(),
            ],
        )
            .prop_map(|(mut envelope, ops)| {
                envelope["ops"] = ops;
                envelope
            })
    }

    #[test]
    fn urls_without_escapes_share_the_batch_body() {
        let body = Bytes::from_static(br#"{"ops": [{"url": "/a?b=1"}, {"url": "/\u0063"}]}"#);
        let parts = http::Request::post("/batch")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let batch = Native.decode(&parts, &body).unwrap();
        let inside = |url: &Target| body.as_ptr_range().contains(&url.as_str().as_ptr());
        assert_eq!(batch.ops[0].url, "/a?b=1");
        assert!(inside(&batch.ops[0].url), "a view of the body, not a copy");
        assert_eq!(batch.ops[1].url, "/c");
        assert!(
            !inside(&batch.ops[1].url),
            "an escaped url is decoded into its own bytes"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// The one-pass decode must mean exactly what the value-by-value one does:
        /// the same batch, or the same refusal at the same pointer.
        #[test]
        fn the_typed_pass_agrees_with_the_explaining_one(document in document()) {
            let body = Bytes::from(document.to_string());
            let parts = http::Request::post("/batch").body(()).unwrap().into_parts().0;
            prop_assert_eq!(Native.decode(&parts, &body), explain(&body));
        }
    }
}
