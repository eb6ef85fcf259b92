//! The one internal model every wire format translates to and from.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde_json::value::RawValue;

/// One operation as a client sent it, before validation.
///
/// Codecs fill it from their wire format; [`crate::BatchEndpoint`] validates it
/// (target, method, headers, ids, dependencies) before anything runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Operation {
    /// The op's id; `None` means its index as a decimal string.
    pub id: Option<String>,
    /// The HTTP method, any case; `None` means `GET`.
    pub method: Option<String>,
    /// The origin-form target: `/path?query`.
    pub url: Target,
    /// Headers the op sets, replacing inherited ones of the same name.
    pub headers: Vec<(String, String)>,
    /// The request body, already in its wire bytes.
    pub body: Bytes,
    /// Ids of ops that must succeed before this one runs.
    pub depends_on: Vec<String>,
    /// When the op succeeds, answer only its id and status.
    pub silent: bool,
    /// A deadline lower than the server's op timeout.
    pub timeout: Option<Duration>,
}

impl Operation {
    /// An op with `method` aimed at `url`, everything else default.
    pub fn new(method: impl Into<String>, url: impl Into<Target>) -> Self {
        Self {
            method: Some(method.into()),
            url: url.into(),
            ..Self::default()
        }
    }
}

/// An op's url as the client wrote it: text that shares the batch body's bytes when
/// it was written there as it is, so that a url is never copied on its way to the
/// request's [`http::Uri`].
///
/// ```
/// use batch_core::Target;
///
/// let url = Target::from("/items?limit=2");
/// assert_eq!(url, "/items?limit=2");
/// assert_eq!(url.as_str().split_once('?'), Some(("/items", "limit=2")));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Target(Bytes);

impl Target {
    /// A view of `text`, which lies inside `document`, sharing its bytes (a copy if it
    /// does not lie inside).
    pub(crate) fn shared(document: &Bytes, text: &str) -> Self {
        Self(shared(document, text))
    }

    /// The url.
    pub fn as_str(&self) -> &str {
        // Every constructor takes a `str`, so the bytes are always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The url's bytes, for a [`http::Uri`] that shares them.
    pub(crate) fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<String> for Target {
    fn from(url: String) -> Self {
        Self(Bytes::from(url))
    }
}

impl From<&str> for Target {
    fn from(url: &str) -> Self {
        Self(Bytes::copy_from_slice(url.as_bytes()))
    }
}

impl PartialEq<str> for Target {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Target {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `part` as a view into `document` when it lies inside it, as every value parsed
/// from the document does; a copy otherwise. Op bodies are most of a large batch's
/// bytes: sharing them keeps one copy of each in memory, not two.
pub(crate) fn shared(document: &Bytes, part: &str) -> Bytes {
    let start = (part.as_ptr() as usize).wrapping_sub(document.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if end <= document.len() => document.slice(start..end),
        _ => Bytes::copy_from_slice(part.as_bytes()),
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// What the response must echo of the request's shape (multipart only).
    pub(crate) layout: Layout,
}

/// What a format's response echoes of its request beyond op order: the labels the
/// client gave ops and the units it grouped them in. The codec that decoded the batch
/// fills it and reads it back when encoding; the engine only carries it through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Per op, the label the client wrote, verbatim: a multipart `Content-ID` (with
    /// its `<>` if it had them), an aggregate path. Empty when the format has none.
    pub(crate) labels: Vec<Option<String>>,
    /// Runs of consecutive ops sent as one unit (multipart change sets), answered as
    /// one nested part; ops outside every group are answered one part each.
    pub(crate) groups: Vec<std::ops::Range<usize>>,
}

impl BatchRequest {
    /// A batch of `ops` with the default options.
    pub fn new(ops: Vec<Operation>) -> Self {
        Self {
            ops,
            sequential: false,
            on_error: OnError::Continue,
            include_headers: true,
            layout: Layout::default(),
        }
    }
}

/// An op's response body, classified once for every wire format.
#[derive(Debug, Clone)]
pub enum ResultBody {
    /// No body (also every HEAD response).
    Empty,
    /// A JSON body: text that parsed as JSON, kept verbatim (the response's own
    /// bytes, not a copy).
    Json(Bytes),
    /// A UTF-8 body that is not JSON.
    Text(String),
    /// Anything else.
    Binary(Bytes),
}

impl ResultBody {
    /// Classifies `body` by the response's content type: JSON that parses is kept as
    /// raw JSON, other UTF-8 as text, anything else as bytes.
    pub fn classify(headers: &HeaderMap, body: Bytes) -> Self {
        if body.is_empty() {
            return Self::Empty;
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        // Parsed as a borrowed raw value: validated (UTF-8 included) without
        // building or copying anything, so the body itself is what is kept.
        if content_type.is_some_and(is_json_content_type)
            && serde_json::from_slice::<&RawValue>(&body).is_ok()
        {
            return Self::Json(body);
        }
        match String::from_utf8(body.into()) {
            Ok(text) => Self::Text(text),
            Err(err) => Self::Binary(Bytes::from(err.into_bytes())),
        }
    }

    /// A small JSON body the engine answers with for ops that did not run normally.
    pub(crate) fn json(value: &impl serde::Serialize) -> Self {
        match serde_json::to_vec(value) {
            Ok(json) => Self::Json(json.into()),
            Err(_) => Self::Empty,
        }
    }

    /// The body as the handler wrote it.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Empty => &[],
            Self::Json(bytes) | Self::Binary(bytes) => bytes,
            Self::Text(text) => text.as_bytes(),
        }
    }
}

/// Whether a content type is JSON: `application/json` or any `*/*+json`.
pub(crate) fn is_json_content_type(content_type: &str) -> bool {
    // Compared in place, byte by byte: this runs for every op's response, and most
    // say exactly `application/json`.
    if content_type == "application/json" {
        return true;
    }
    let bytes = content_type.as_bytes();
    let end = bytes.iter().position(|&b| b == b';').unwrap_or(bytes.len());
    let essence = bytes[..end].trim_ascii();
    essence.eq_ignore_ascii_case(b"application/json")
        || essence.contains(&b'/')
            && essence.len() >= 5
            && essence[essence.len() - 5..].eq_ignore_ascii_case(b"+json")
}

/// The outcome of one operation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpResult {
    /// The op's id (its index when the client gave none).
    pub id: String,
    /// The response status, or the status the engine answered for the op.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The response body.
    pub body: ResultBody,
    /// The client asked for only id and status when the op succeeds.
    pub silent: bool,
}

/// The results of a batch, in request order, with the options encoders need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchResponse {
    /// One result per op, in request order.
    pub results: Vec<OpResult>,
    /// Whether results carry their headers.
    pub include_headers: bool,
    /// The request's layout, handed back to the codec that decoded it.
    pub(crate) layout: Layout,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn typed(content_type: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers
    }

    #[test]
    fn values_inside_the_document_are_shared_others_copied() {
        let document = Bytes::from_static(br#"{"body": {"x": [1, 2]}}"#);
        let text = std::str::from_utf8(&document).unwrap();
        let inside = &text[9..22];
        let view = shared(&document, inside);
        assert_eq!(view, inside.as_bytes());
        assert_eq!(view.as_ptr(), inside.as_ptr(), "no copy");
        let elsewhere = String::from(r#"{"x": [1, 2]}"#);
        let copy = shared(&document, &elsewhere);
        assert_eq!(copy, elsewhere.as_bytes());
        assert_ne!(copy.as_ptr(), elsewhere.as_ptr());
    }

    #[test]
    fn json_is_kept_verbatim() {
        let body = Bytes::from_static(br#"{"b": 1,  "a": [1.50, "x"]}"#);
        match ResultBody::classify(&typed("application/json; charset=utf-8"), body) {
            ResultBody::Json(raw) => assert_eq!(raw, r#"{"b": 1,  "a": [1.50, "x"]}"#),
            other => panic!("{other:?}"),
        }
        let problem = Bytes::from_static(b"{}");
        assert!(matches!(
            ResultBody::classify(&typed("application/problem+json"), problem),
            ResultBody::Json(_)
        ));
    }

    #[test]
    fn invalid_json_falls_back_to_text_and_non_utf8_to_binary() {
        let text = ResultBody::classify(&typed("application/json"), Bytes::from_static(b"{no"));
        assert!(matches!(text, ResultBody::Text(t) if t == "{no"));
        let html = ResultBody::classify(&typed("text/html"), Bytes::from_static(b"<p>"));
        assert!(matches!(html, ResultBody::Text(_)));
        let not_utf8 = Bytes::from_static(b"[\"\xff\"]");
        assert!(
            matches!(
                ResultBody::classify(&typed("application/json"), not_utf8),
                ResultBody::Binary(_)
            ),
            "JSON text is UTF-8: a body that is not is kept as bytes"
        );
        let raw = ResultBody::classify(&HeaderMap::new(), Bytes::from_static(&[0xff, 0]));
        assert!(matches!(raw, ResultBody::Binary(b) if b.as_ref() == [0xff, 0]));
        assert!(matches!(
            ResultBody::classify(&typed("application/json"), Bytes::new()),
            ResultBody::Empty
        ));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON ; charset=utf-8"));
        assert!(is_json_content_type("application/vnd.api+json"));
        assert!(!is_json_content_type("text/json-ish"));
        assert!(!is_json_content_type("application/jsonp"));
        assert!(!is_json_content_type("+json"), "a media type has a slash");
        assert!(is_json_content_type(" application/json"));
    }
}
