//! What an operator sees of batches and ops: each batch's id, a span per batch and
//! per op, and metrics through the [`metrics`](https://docs.rs/metrics) facade.
//! `docs/operating.md` lists every span field and every metric.
//!
//! Nothing here records a header value but `x-request-id`, nor a body, nor a query
//! string: those are where clients put their secrets.

mod batch_id;
mod meter;
mod spans;

pub(crate) use batch_id::{BatchId, OpIds, X_BATCH_ID, X_REQUEST_ID};
pub use meter::describe as describe_metrics;
pub(crate) use meter::{
    BatchMeter, OpMeter, Reason, Since, SocketMeter, Tally, Transport, Waiting,
};
pub(crate) use spans::{batch_span, op_span, record_field};
