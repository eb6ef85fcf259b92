//! Facebook Graph batching: a form body whose `batch` field is a JSON array of
//! `{method, relative_url, body, name, depends_on, omit_response_on_success}`, and an
//! optional `include_headers=false`; answered with a JSON array of
//! `{code, headers: [{name, value}], body: "<string>"}`.
//!
//! `name` is the op's id; an op's `body` is a form-encoded string sent as it is;
//! `omit_response_on_success` answers a successful op with `null`. The response `body`
//! is a string (JSON text for JSON bodies, as Facebook does; base64 for bytes that are
//! not UTF-8).

mod decode;
mod encode;

pub(crate) use decode::decode;
pub(crate) use encode::encode;

use crate::model::Field;

/// Where `field` of op `op` sits in the `batch` field's array.
pub(crate) fn pointer(op: usize, field: &Field) -> Option<String> {
    Some(super::json::pointer(
        "batch",
        op,
        field,
        ["relative_url", "name", "depends_on"],
    ))
}

#[cfg(test)]
mod tests;
