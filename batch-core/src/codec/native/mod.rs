//! The native JSON format (`{"ops": [...]}` in, `{"results": [...]}` out), including
//! the batch_api gem's subset (lower-case methods, `params`/`args`, `silent`).
//!
//! It is also the model's serde form: `BatchRequest` and `BatchResponse` serialise
//! to and from exactly these documents (`serde_model.rs`), so a client and a server share
//! one model.

mod decode;
mod encode;
mod op;
mod serde_model;
mod typed;

pub(crate) use decode::{decode, decode_each};
pub(crate) use encode::{Answer, encode, write_indexed, write_results};
pub(crate) use op::query_text;
pub(crate) use typed::Each;

use crate::model::Field;

/// Where `field` of op `op` sits in a native document.
pub(crate) fn pointer(op: usize, field: &Field) -> Option<String> {
    Some(super::json::pointer(
        "ops",
        op,
        field,
        ["url", "id", "depends_on"],
    ))
}

#[cfg(test)]
mod tests;
