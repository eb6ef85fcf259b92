//! What a server answers: one result per operation, in request order.

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde_json::value::RawValue;

use super::format::Format;
use super::request::Layout;
use super::text::Text;
use crate::codec::json::scan;

/// An op's response body, classified once for every wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        // Among the few names most responses have, comparing each costs less than
        // hashing the one looked for; the one name of many (often the content type
        // alone) is taken without the iterator's loop (~20 instructions per op).
        let content_type = if headers.len() == 1 {
            headers
                .iter()
                .next()
                .filter(|(name, _)| *name == header::CONTENT_TYPE)
                .map(|(_, value)| value)
        } else if headers.len() <= 4 {
            headers
                .iter()
                .find(|(name, _)| *name == header::CONTENT_TYPE)
                .map(|(_, value)| value)
        } else {
            headers.get(header::CONTENT_TYPE)
        };
        // Most say exactly `application/json`: compared as bytes, without the
        // check of the whole value `to_str` makes first.
        let json_type = content_type.is_some_and(|value| {
            value.as_bytes() == b"application/json"
                || value.to_str().is_ok_and(is_json_content_type)
        });
        if json_type && is_json(&body) {
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
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Empty => &[],
            Self::Json(bytes) | Self::Binary(bytes) => bytes,
            Self::Text(text) => text.as_bytes(),
        }
    }
}

/// The largest body checked by the crate's own JSON reader: on a few dozen bytes,
/// setting up serde_json's reader costs several times the scan itself, and most
/// responses are that small.
const SMALL: usize = 128;

// Up to `SMALL` bytes, the reader and serde_json give one answer.
const _: () = assert!(SMALL < scan::AGREES_BELOW);

/// Whether `body` is one JSON value in UTF-8.
fn is_json(body: &[u8]) -> bool {
    if body.len() <= SMALL {
        return scan::is_json(body);
    }
    // Parsed as a borrowed raw value: validated (UTF-8 included) without building
    // or copying anything, so the body itself is what is kept.
    serde_json::from_slice::<&RawValue>(body).is_ok()
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
///
/// ```
/// use batch_core::{OpResult, ResultBody};
/// use http::StatusCode;
///
/// let result = OpResult::new("0", StatusCode::NOT_FOUND);
/// assert_eq!(result.body, ResultBody::Empty);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OpResult {
    /// The op's id (its index when the client gave none).
    pub id: Text,
    /// The response status, or the status the engine answered for the op.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The response body.
    pub body: ResultBody,
    /// The client asked for only id and status when the op succeeds.
    pub silent: bool,
}

impl OpResult {
    /// A result for op `id` with `status`, no headers and no body.
    pub fn new(id: impl Into<Text>, status: StatusCode) -> Self {
        Self {
            id: id.into(),
            status,
            headers: HeaderMap::new(),
            body: ResultBody::Empty,
            silent: false,
        }
    }
}

/// An op's result as its parts, borrowed where they lie: what writing it reads. The
/// engine writes most results from the op's response this way, without moving its
/// parts into an [`OpResult`] first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResultParts<'a> {
    /// The op's id.
    pub(crate) id: &'a Text,
    /// The response status, or the status the engine answered for the op.
    pub(crate) status: StatusCode,
    /// The response headers.
    pub(crate) headers: &'a HeaderMap,
    /// The response body.
    pub(crate) body: &'a ResultBody,
    /// The client asked for only id and status when the op succeeds.
    pub(crate) silent: bool,
}

impl OpResult {
    /// The result's parts, borrowed.
    pub(crate) fn parts(&self) -> ResultParts<'_> {
        ResultParts {
            id: &self.id,
            status: self.status,
            headers: &self.headers,
            body: &self.body,
            silent: self.silent,
        }
    }
}

/// The results of a batch, in request order, with the options encoders need.
///
/// [`BatchEndpoint::run`](crate::BatchEndpoint::run) answers one; [`encode`](crate::encode)
/// writes it in any format, and serde reads and writes it in the native format:
///
/// ```
/// use batch_core::{BatchResponse, OpResult};
/// use http::StatusCode;
///
/// let response = BatchResponse::new(vec![OpResult::new("a", StatusCode::NO_CONTENT)]);
/// let json = serde_json::to_string(&response)?;
/// assert_eq!(json, r#"{"results":[{"id":"a","status":204,"headers":{},"body":null}]}"#);
/// let back: BatchResponse = serde_json::from_str(&json)?;
/// assert_eq!(back.results[0].status, 204);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BatchResponse {
    /// One result per op, in request order.
    pub results: Vec<OpResult>,
    /// Whether results carry their headers.
    pub include_headers: bool,
    /// The request's layout, handed back to the codec that decoded it.
    pub(crate) layout: Layout,
}

impl BatchResponse {
    /// A native response of `results`, with their headers.
    pub fn new(results: Vec<OpResult>) -> Self {
        Self {
            results,
            include_headers: true,
            layout: Layout::default(),
        }
    }

    /// The format of the batch these results answer ([`Format::Native`] for a
    /// response built by hand).
    pub fn format(&self) -> Format {
        self.layout.format
    }
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
    fn json_is_recognised_small_or_large_and_nested_deep() {
        // 200 levels take 400 bytes, past the crate's reader, whose depth limit
        // serde_json's raw values do not have.
        for depth in [1, 64, 200] {
            let body = [b"[".repeat(depth), b"]".repeat(depth)].concat();
            assert!(
                matches!(
                    ResultBody::classify(&typed("application/json"), body.into()),
                    ResultBody::Json(_)
                ),
                "{depth} levels"
            );
        }
        let long = format!("[{}]", "\"x\",".repeat(40));
        assert!(matches!(
            ResultBody::classify(&typed("application/json"), long.into()),
            ResultBody::Text(_)
        ));
    }

    #[test]
    fn the_content_type_is_found_among_few_headers_and_many() {
        for others in [1, 8] {
            let mut headers = HeaderMap::new();
            for i in 0..others {
                let name = http::HeaderName::try_from(format!("x-other-{i}")).unwrap();
                headers.insert(name, HeaderValue::from_static("application/json"));
            }
            let body = || Bytes::from_static(b"[1]");
            assert!(
                matches!(ResultBody::classify(&headers, body()), ResultBody::Text(_)),
                "no content type, {others} other headers"
            );
            headers.append(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.append(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            assert!(
                matches!(ResultBody::classify(&headers, body()), ResultBody::Json(_)),
                "the first content type counts, {others} other headers"
            );
        }
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
