//! Reading a Facebook Graph batch: the form, then its `batch` field's JSON array.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::codec::json::{At, OneOrMany, field, parse_document, set_default_content_type};
use crate::codec::spelling::rooted;
use crate::model::{BatchRequest, Operation};
use crate::problem::Problem;

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

/// Decodes a Facebook Graph batch form.
pub(crate) fn decode(body: &Bytes) -> Result<BatchRequest, Problem> {
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
            operation.id = Some(name.into());
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
pub(super) fn form_decode(raw: &[u8]) -> Result<String, Problem> {
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
