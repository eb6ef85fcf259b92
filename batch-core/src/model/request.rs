//! What a client asks for: a batch of operations and its options.

use std::time::Duration;

use bytes::Bytes;

use super::format::Format;
use super::text::Text;

/// One operation as a client sent it, before validation.
///
/// Codecs fill it from their wire format; [`BatchEndpoint::run`](crate::BatchEndpoint::run)
/// validates it (target, method, headers, ids, dependencies) before anything runs.
///
/// ```
/// use batch_core::Operation;
///
/// let mut op = Operation::new("PATCH", "/items/7");
/// op.id = Some("rename".into());
/// op.headers.push(("content-type".into(), "application/json".into()));
/// op.body = r#"{"name": "pen"}"#.into();
/// assert_eq!(op.url, "/items/7");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Operation {
    /// The op's id; `None` means its index as a decimal string.
    pub id: Option<Text>,
    /// The HTTP method, any case; `None` means `GET`.
    pub method: Option<Text>,
    /// The origin-form target: `/path?query`.
    pub url: Text,
    /// Headers the op sets, replacing inherited ones of the same name: names and
    /// values read from the batch body share its bytes.
    pub headers: Vec<(Text, Text)>,
    /// The request body, already in its wire bytes.
    pub body: Bytes,
    /// Ids of ops that must succeed before this one runs.
    pub depends_on: Vec<String>,
    /// A condition on earlier ops' outcomes (`"if"` on the wire), such as
    /// `"$create/$succeeded"` or `"not ($a/$succeeded or $b/$succeeded)"`: the op
    /// waits for every op it names and runs only when it holds (else it is answered
    /// 412), whether or not its dependencies succeeded.
    pub condition: Option<String>,
    /// When the op succeeds, answer only its id and status.
    pub silent: bool,
    /// A deadline lower than the server's op timeout.
    pub timeout: Option<Duration>,
    /// Where in `url` each `params` value that is exactly one `{result=...}`
    /// reference starts, in order (native format): such a value is applied with its
    /// JSON type, as a literal `params` value is, not as url text.
    pub(crate) whole_params: Vec<usize>,
}

impl Operation {
    /// An op with `method` aimed at `url`, everything else default.
    pub fn new(method: impl Into<Text>, url: impl Into<Text>) -> Self {
        Self {
            method: Some(method.into()),
            url: url.into(),
            ..Self::default()
        }
    }
}

/// What to do with the rest of a batch once an op fails (status >= 400).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnError {
    /// Run every op whose dependencies succeeded.
    #[default]
    Continue,
    /// Start no further op; ops not yet started get 424.
    Stop,
}

/// A decoded batch: its operations and options.
///
/// [`decode`](crate::decode) reads one from a request in any enabled format; a
/// client can build one and send it in the native format with serde:
///
/// ```
/// use batch_core::{BatchRequest, Operation};
///
/// let mut batch = BatchRequest::new(vec![
///     Operation::new("GET", "/items/1"),
///     Operation::new("DELETE", "/items/2"),
/// ]);
/// batch.sequential = true;
/// let json = serde_json::to_value(&batch)?;
/// assert_eq!(json["ops"][1]["method"], "DELETE");
/// assert_eq!(json["sequential"], true);
/// let back: BatchRequest = serde_json::from_value(json)?;
/// assert_eq!(back.ops[1].url, "/items/2");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchRequest {
    /// The operations, in request order.
    pub ops: Vec<Operation>,
    /// Run ops one at a time in request order.
    pub sequential: bool,
    /// Whether a failure halts the batch.
    pub on_error: OnError,
    /// Whether results carry their response headers.
    pub include_headers: bool,
    /// What the response must echo of the request's shape.
    pub(crate) layout: Layout,
}

impl Default for BatchRequest {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl BatchRequest {
    /// A native batch of `ops` with the default options.
    pub fn new(ops: Vec<Operation>) -> Self {
        Self {
            ops,
            sequential: false,
            on_error: OnError::Continue,
            include_headers: true,
            layout: Layout::default(),
        }
    }

    /// The format the batch was decoded from ([`Format::Native`] for one built by
    /// hand): its response is encoded in the same format.
    pub fn format(&self) -> Format {
        self.layout.format
    }
}

/// What a format's response echoes of its request beyond op order: the format, the
/// labels the client gave ops and the units it grouped them in. The codec that
/// decoded the batch fills it and reads it back when encoding; the engine only
/// carries it through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The format the batch arrived in.
    pub(crate) format: Format,
    /// Per op, the label the client wrote, verbatim: a multipart `Content-ID` (with
    /// its `<>` if it had them), an aggregate path. Empty when the format has none.
    pub(crate) labels: Vec<Option<String>>,
    /// Runs of consecutive ops sent as one unit (multipart change sets), answered as
    /// one nested part; ops outside every group are answered one part each.
    pub(crate) groups: Vec<std::ops::Range<usize>>,
}

/// A field of an operation, for locating a fault in the request document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Url,
    Method,
    Id,
    Headers,
    Header(String),
    DependsOn(usize),
    Body,
    Condition,
}
