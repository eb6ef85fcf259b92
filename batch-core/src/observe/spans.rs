//! The spans of a batch and of its ops.
//!
//! A batch's span is a child of the caller's (whatever span the adapter's future
//! runs in: a tower-http `TraceLayer`'s, say); each op's is a child of its batch's,
//! and is entered whenever the op's future is polled, so whatever the application
//! logs while serving an op carries the op and its batch.

use bytes::Bytes;
use http::Request;
use tracing::Span;
use tracing::field::Empty;

use super::batch_id::BatchId;
use super::meter::Transport;
use crate::model::Text;

/// The span of one batch: `id` and `transport` now; `format` once the body is
/// decoded, `ops` once it is planned, and `status` (the batch's own) at the end.
pub(crate) fn batch_span(id: &BatchId, transport: Transport) -> Span {
    tracing::info_span!(
        target: "batch_core::batch",
        "batch",
        id = id.as_str(),
        transport = transport.name(),
        format = Empty,
        ops = Empty,
        status = Empty,
    )
}

/// Records `value` as `span`'s `field`, unless the span is none (no subscriber wants
/// it, and no `log` either): it records nothing then, but a record on it is still a
/// call to learn that (~20 instructions, three times a batch).
#[inline(always)]
pub(crate) fn record_field(span: &Span, field: &str, value: impl tracing::Value) {
    if !span.is_none() {
        span.record(field, value);
    }
}

/// The span of op `index`, whose request is `request`: its `id`, `method` and `path`
/// (never the query, where clients put tokens) now; its `status` and `duration_ms`
/// when it ends.
///
/// At DEBUG: a span per op costs next to nothing while no subscriber wants it, and a
/// production log at INFO keeps one line per batch.
// Always inlined into the run: the check that no one wants the span is then a few
// instructions in place, not a call (~16 instructions an op).
#[inline(always)]
pub(crate) fn op_span(index: usize, id: &Text, request: &Request<Bytes>) -> Span {
    tracing::debug_span!(
        target: "batch_core::op",
        "op",
        index,
        // Read only when the span is recorded: most runs record none.
        id = id.as_str(),
        method = request.method().as_str(),
        path = request.uri().path(),
        status = Empty,
        duration_ms = Empty,
    )
}
