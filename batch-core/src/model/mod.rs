//! The one model every wire format translates to and from: a [`BatchRequest`] of
//! [`Operation`]s in, a [`BatchResponse`] of [`OpResult`]s out.
//!
//! Clients and servers share it: both serialise it in the native format with serde
//! (see [`crate::codec`]).

mod capabilities;
mod format;
mod request;
mod response;
mod text;

pub use capabilities::Capabilities;
pub(crate) use capabilities::DEFAULT_MAX_BATCH_RESPONSE;
pub use format::Format;
pub use request::{BatchRequest, OnError, Operation};
pub use response::{BatchResponse, OpResult, ResultBody};
pub use text::Text;

pub(crate) use request::{Field, Layout};
pub(crate) use response::{ResultParts, is_json_content_type};
pub(crate) use text::shared;

/// Marks a request as an operation of a batch; every op request carries it in its
/// extensions.
///
/// Handlers can read it to tell batched calls from direct ones; the endpoint uses it
/// to refuse a batch that arrives as an operation of another batch, however the
/// route was mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOp {
    pub(crate) index: usize,
}

impl BatchOp {
    /// The op's position in its batch.
    pub fn index(&self) -> usize {
        self.index
    }
}
