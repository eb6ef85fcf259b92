//! What a batch endpoint advertises about itself: its limits and abilities.

use serde::{Deserialize, Serialize};

/// The limits and abilities of a batch endpoint, as `OPTIONS` on the batch path
/// answers them (a JSON object); [`Config::capabilities`](crate::Config::capabilities)
/// builds it from the configuration in effect, and a client reads it back with serde
/// to size its batches.
///
/// ```
/// use batch_core::{Capabilities, Config};
///
/// let advertised = Config::builder().max_ops(20).build()?.capabilities();
/// let json = serde_json::to_value(&advertised)?;
/// assert_eq!(json["max_ops"], 20);
/// assert_eq!(json["formats"], serde_json::json!(["native", "graph", "aggregate", "multipart"]));
/// assert_eq!(json["idempotency"], true);
/// let read: Capabilities = serde_json::from_value(json)?;
/// assert_eq!(read, advertised);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// The most operations one batch may carry.
    pub max_ops: usize,
    /// The largest batch body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How many operations of one batch run at the same time.
    pub max_concurrency: usize,
    /// The most bytes of results (bodies and headers) a buffered answer holds;
    /// past it, results are answered 507. A streamed answer has no such cap.
    #[serde(default = "default_max_batch_response")]
    pub max_batch_response_bytes: usize,
    /// The wire formats accepted, by [`Format::name`](crate::Format::name).
    pub formats: Vec<String>,
    /// Whether results can be streamed as ops finish (`Accept: application/x-ndjson`
    /// or `text/event-stream`).
    pub streaming: bool,
    /// Whether ops can refer to earlier ops' results.
    pub references: bool,
    /// Whether a batch sent with an `Idempotency-Key` runs at most once per key and
    /// caller, so a client may send it again after losing the answer. A server that
    /// does not say (an older one) is taken not to.
    #[serde(default)]
    pub idempotency: bool,
    /// The socket endpoint's path, when sockets are on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
}

/// What a server that does not advertise its whole-batch cap (an older one) is
/// taken to hold: the default.
fn default_max_batch_response() -> usize {
    DEFAULT_MAX_BATCH_RESPONSE
}

/// What a buffered answer holds at most by default; see
/// [`ConfigBuilder::max_batch_response`](crate::ConfigBuilder::max_batch_response).
pub(crate) const DEFAULT_MAX_BATCH_RESPONSE: usize = 16 * 1024 * 1024;
