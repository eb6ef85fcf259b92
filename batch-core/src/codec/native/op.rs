//! Building one native op from its typed fields: the checks that are not about
//! types, shared by the typed pass and the explaining one.

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;

use crate::codec::json::{
    At, Entries, field_text, json_body, pointer_token, set_default_content_type,
};
use crate::model::{Operation, Text, shared};
use crate::problem::Problem;
use crate::reference::{self, Piece};

/// One op's fields in their types, but for its url, id and method, which are read
/// straight into the [`Operation`] the op is built in (as the document's own bytes
/// unless they have escapes, so that the op's request and result share them).
#[derive(Default)]
pub(super) struct TypedOp<'a> {
    /// Whether the op gave a url (not `null`), which its operation then holds.
    pub(super) url: bool,
    /// One entry per value, in document order.
    pub(super) headers: Option<Vec<(Text, Text)>>,
    /// JSON text.
    pub(super) body: Option<&'a str>,
    pub(super) body_base64: Option<String>,
    /// JSON text.
    pub(super) params: Option<&'a str>,
    pub(super) depends_on: Option<Vec<String>>,
    pub(super) silent: Option<bool>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) condition: Option<String>,
    /// Whether a field other than the url, id and method may be set: most ops have
    /// none, and are built without a look at each.
    pub(super) others: bool,
}

/// Where field `name` of op `index` sits.
pub(super) fn at(index: usize, name: &'static str) -> At {
    At {
        list: "ops",
        index,
        name,
    }
}

/// Builds `operation`, which holds the url, id and method its op gave, from the
/// op's other typed fields: the checks that are not about types. It is built where
/// it lies, in the batch's list: an op is never moved whole once built. Every field
/// is taken out of `op`, which is not moved either (as an argument it would be
/// copied whole): built, it is a default one again, for the next op to be read into.
// Always inlined into the reading of each op (both readers), with the fields most
// ops give; the others are built out of line.
#[inline(always)]
pub(super) fn build_op(
    index: usize,
    op: &mut TypedOp<'_>,
    document: &Bytes,
    operation: &mut Operation,
) -> Result<(), Problem> {
    if !std::mem::take(&mut op.url) {
        return Err(
            Problem::bad_request(format!("operation {index} has no `url`"))
                .at(Some(index), Some(at(index, "url").to_string())),
        );
    }
    if operation.id.as_ref().is_some_and(Text::is_empty) {
        return Err(invalid(index, "id", "a non-empty string"));
    }
    if std::mem::take(&mut op.others) {
        build_others(index, op, document, operation)?;
    }
    Ok(())
}

/// Field `name` of op `index` is not what it `must` be.
#[cold]
fn invalid(index: usize, name: &'static str, must: &str) -> Problem {
    Problem::bad_request(format!("{} must be {must}", at(index, name)))
        .at(Some(index), Some(at(index, name).to_string()))
}

/// [`build_op`] for the fields other than the url, id and method.
fn build_others(
    index: usize,
    op: &mut TypedOp<'_>,
    document: &Bytes,
    operation: &mut Operation,
) -> Result<(), Problem> {
    let at = |name| at(index, name);
    if let Some(headers) = op.headers.take() {
        operation.headers = headers;
    }
    if let Some(ids) = op.depends_on.take() {
        operation.depends_on = ids;
    }
    operation.silent = op.silent.take().unwrap_or(false);
    operation.condition = op.condition.take();
    if let Some(ms) = op.timeout_ms.take() {
        if ms == 0 {
            return Err(invalid(index, "timeout_ms", "a positive integer"));
        }
        operation.timeout = Some(Duration::from_millis(ms));
    }
    let method_has_query_params = operation.method.as_ref().is_none_or(|m| {
        [&b"GET"[..], b"HEAD", b"DELETE"]
            .iter()
            .any(|q| q.eq_ignore_ascii_case(m.as_bytes()))
    });
    let body = match (op.body.take(), op.body_base64.take()) {
        (Some(_), Some(_)) => {
            return Err(Problem::bad_request(format!(
                "operation {index} has both `body` and `body_base64`"
            ))
            .at(Some(index), Some(at("body_base64").to_string())));
        }
        (Some(raw), None) => Some(json_body(operation, raw, document)),
        (_, Some(text)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|_| {
                    Problem::bad_request(format!("{} is not valid base64", at("body_base64")))
                        .at(Some(index), Some(at("body_base64").to_string()))
                })?;
            set_default_content_type(operation, "application/octet-stream");
            Some(Bytes::from(bytes))
        }
        _ => None,
    };
    if let Some(raw) = op.params.take() {
        let pointer = at("params").to_string();
        let params: Entries<serde_json::Value> =
            field_text(raw, Some(index), &pointer, "an object")?;
        if method_has_query_params {
            let (query, whole) =
                encode_query(&params).map_err(|key| {
                    Problem::bad_request(format!(
                    "{pointer}/{key} must be a string, number, boolean, null or an array of them"
                ))
                .at(Some(index), Some(format!("{pointer}/{}", pointer_token(&key))))
                })?;
            if !query.is_empty() {
                let url = operation.url.as_str();
                let separator = if url.contains('?') { '&' } else { '?' };
                let start = url.len() + separator.len_utf8();
                operation.whole_params = whole.into_iter().map(|at| start + at).collect();
                operation.url = format!("{url}{separator}{query}").into();
            }
        } else if body.is_none() {
            set_default_content_type(operation, "application/json");
            operation.body = shared(document, raw);
        }
    }
    if let Some(body) = body {
        operation.body = body;
    }
    Ok(())
}

/// A string read from `document`: a view of its bytes, or the string itself if it
/// had escapes.
pub(super) fn text(read: Cow<'_, str>, document: &Bytes) -> Text {
    match read {
        Cow::Borrowed(text) => Text::shared(document, text),
        Cow::Owned(text) => text.into(),
    }
}

/// `params` as a query string, and where in it each value that is exactly one
/// reference starts (the links apply such a value with its JSON type); on a value
/// that has no query form, the offending key.
fn encode_query(params: &Entries<serde_json::Value>) -> Result<(String, Vec<usize>), String> {
    use serde_json::Value;
    let mut query = String::new();
    let mut whole = Vec::new();
    for (key, value) in &params.0 {
        if let Value::String(text) = value
            && is_one_reference(text)
        {
            separate(&mut query, key);
            whole.push(query.len());
            query.push_str(text);
            continue;
        }
        let pushed = match value {
            Value::Array(items) => items
                .iter()
                .try_for_each(|item| push_pair(&mut query, key, item)),
            other => push_pair(&mut query, key, other),
        };
        pushed.map_err(|()| key.clone())?;
    }
    Ok((query, whole))
}

/// Whether `text` is exactly one well-formed reference.
fn is_one_reference(text: &str) -> bool {
    text.starts_with(reference::OPEN)
        && matches!(
            reference::pieces(text).as_deref(),
            Ok([Piece::Reference(_)])
        )
}

/// Starts a pair of `query`: its `&` and its percent-encoded key and `=`.
fn separate(query: &mut String, key: &str) {
    if !query.is_empty() {
        query.push('&');
    }
    percent_encode_into(query, key);
    query.push('=');
}

/// One `key=value` pair of a query; `Err` for a value that has no query form.
fn push_pair(query: &mut String, key: &str, value: &serde_json::Value) -> Result<(), ()> {
    let text = query_text(value).ok_or(())?;
    separate(query, key);
    encode_value(query, &text);
    Ok(())
}

/// A `params` value's text in a query, not yet encoded: a string as it is, a number
/// or boolean as its JSON text, `null` empty. `None` for an array or an object,
/// which have no query form as one value (an array's items each make a pair).
pub(crate) fn query_text(value: &serde_json::Value) -> Option<Cow<'_, str>> {
    use serde_json::Value;
    Some(match value {
        Value::String(text) => Cow::Borrowed(text.as_str()),
        Value::Number(number) => Cow::Owned(number.to_string()),
        Value::Bool(true) => Cow::Borrowed("true"),
        Value::Bool(false) => Cow::Borrowed("false"),
        Value::Null => Cow::Borrowed(""),
        Value::Array(_) | Value::Object(_) => return None,
    })
}

/// A query value percent-encoded, but for the `{result=...}` references in it,
/// which the url's own rules then apply to.
fn encode_value(out: &mut String, text: &str) {
    if !reference::has_reference(text) {
        return percent_encode_into(out, text);
    }
    match reference::pieces(text) {
        Ok(pieces) => {
            for piece in pieces {
                match piece {
                    Piece::Text(text) => percent_encode_into(out, text),
                    Piece::Reference(written) => out.push_str(written.text),
                }
            }
        }
        // Left as written, for the url's check to refuse where it is malformed.
        Err(malformed) => {
            percent_encode_into(out, &text[..text.len() - malformed.at.len()]);
            out.push_str(malformed.at);
        }
    }
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
