//! Microsoft Graph / OData 4.01 JSON batching: `{"requests": [...]}` in,
//! `{"responses": [...]}` out.
//!
//! `id` is required; `dependsOn` names ids or atomicity groups; an `atomicityGroup`
//! becomes a dependency chain through its members, so they run in order and the
//! engine's 424 cascade fails the rest of the group after the first failure. A
//! `body` is JSON, or base64 when the request's content type is not JSON (Graph's
//! convention); responses embed JSON bodies and carry any other body as base64.

mod decode;
mod encode;

pub(crate) use decode::decode;
pub(crate) use encode::encode;

use crate::model::Field;

/// Where `field` of request `op` sits in a Graph document.
pub(crate) fn pointer(op: usize, field: &Field) -> Option<String> {
    Some(super::json::pointer(
        "requests",
        op,
        field,
        ["url", "id", "dependsOn"],
    ))
}

#[cfg(test)]
mod tests;
