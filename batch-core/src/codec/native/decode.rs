//! Reading a native batch: one typed pass for a valid batch, and a value-by-value
//! pass that explains the first fault of one that is not.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::op::{TypedOp, at, build_op, text};
use super::typed::{self, Each, Options};
use crate::codec::json::{self, OneOrMany, field, optional, parse_document};
use crate::model::{BatchRequest, OnError, Operation};
use crate::problem::Problem;

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

/// One op with each value left unparsed. Its fields' order is the order of an op
/// written as an array, and the typed pass's `IN_ORDER` follows it.
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
    #[serde(borrow, rename = "if")]
    condition: Option<&'a RawValue>,
}

/// Decodes a native batch.
pub(crate) fn decode(body: &Bytes) -> Result<BatchRequest, Problem> {
    // A valid batch is parsed once, straight into its operations. Only a batch
    // that fails that pass is read again value by value, to say which value is
    // wrong and where; both passes share every check beyond types.
    let Ok(typed) = typed::parse(body) else {
        return explain(body);
    };
    let ops = typed.ops.ok_or_else(no_ops)?;
    if ops.as_ref().is_ok_and(Vec::is_empty) {
        return Err(empty_ops());
    }
    let mut batch = BatchRequest::new(Vec::new());
    apply(&mut batch, typed.options)?;
    batch.ops = ops.map_err(|problem| *problem)?;
    Ok(batch)
}

/// Decodes a native batch op by op, handing each to `each` as it is built: the
/// batch comes back without its ops. `None` for a batch [`decode`] refuses, and
/// for one whose ops `each` does not all take: `decode` is then to read it again.
pub(crate) fn decode_each(body: &Bytes, each: &mut impl Each) -> Option<BatchRequest> {
    let options = typed::parse_each(body, each).ok()?;
    let mut batch = BatchRequest::new(Vec::new());
    apply(&mut batch, options).ok()?;
    Some(batch)
}

/// Decodes a batch the typed pass refused, value by value, so the error names the
/// first value that is wrong and its JSON pointer.
pub(super) fn explain(body: &Bytes) -> Result<BatchRequest, Problem> {
    if let Err(err) = std::str::from_utf8(body) {
        return Err(not_utf8(body, err.valid_up_to()));
    }
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
        let mut built = Operation::default();
        let mut op = explain_op(index, raw, body, &mut built)?;
        build_op(index, &mut op, body, &mut built)?;
        batch.ops.push(built);
    }
    Ok(batch)
}

const ON_ERROR: &str = r#""continue" or "stop""#;

/// The refusal of a batch whose byte at `at` is not UTF-8, placed as serde_json
/// places its faults (line, and column in bytes, from 1), so that the refusal reads
/// the same whether the byte is in a value the server reads or one it skips.
fn not_utf8(body: &[u8], at: usize) -> Problem {
    let before = &body[..at];
    let line = 1 + before.iter().filter(|&&byte| byte == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |newline| newline + 1);
    let column = at - line_start + 1;
    Problem::bad_request(format!(
        "the batch is not valid JSON: invalid unicode code point at line {line} column {column}"
    ))
}

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

/// Types one op value by value, failing at the first value of the wrong type; its
/// url, id and method go into `built`, as the typed pass reads them.
fn explain_op<'a>(
    index: usize,
    raw: &'a RawValue,
    document: &Bytes,
    built: &mut Operation,
) -> Result<TypedOp<'a>, Problem> {
    let at = |name| at(index, name);
    let op: RawOp<'_> = field(raw, Some(index), at(""), "an object with a `url`")?;
    let op_index = Some(index);
    let url = optional(op.url, op_index, at("url"), "a string")?.map(|url| text(url, document));
    built.id =
        optional(op.id, op_index, at("id"), "a non-empty string")?.map(|id| text(id, document));
    built.method = optional(op.method, op_index, at("method"), "a string")?;
    let typed = TypedOp {
        url: url.is_some(),
        headers: optional(op.headers, op_index, at("headers"), json::HEADERS)?
            .map(json::header_list),
        depends_on: optional(
            op.depends_on,
            op_index,
            at("depends_on"),
            "an id or an array of ids",
        )?
        .map(OneOrMany::into_vec),
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
        condition: optional(op.condition, op_index, at("if"), "a condition string")?,
        body: op.body.map(RawValue::get),
        params: op.params.map(RawValue::get),
        others: true,
    };
    if let Some(url) = url {
        built.url = url;
    }
    Ok(typed)
}
