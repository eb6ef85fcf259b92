//! `multipart/mixed` batches (Google APIs, OData, Flask-Batch): one `application/http`
//! part per request, answered with one `application/http` response part per request,
//! in order.
//!
//! A part's `Content-ID` is the op's id and is answered as `<response-ID>` (Google
//! style). A nested `multipart/mixed` part is an OData change set: its requests run in
//! order (a dependency chain, so the first failure answers the rest 424) and are
//! answered as one nested multipart echoing each `Content-ID` exactly. Parsing lives
//! in `parse`, translating parts into ops in `decode`, writing in `encode`.

mod decode;
mod encode;
mod parse;

pub(crate) use decode::decode;
pub(crate) use encode::{encode, streamed_boundary, write_changeset, write_labelled_part};

#[cfg(test)]
mod tests;
