//! Result documents written straight to bytes.
//!
//! The native and Graph answers are a list of small objects whose keys are fixed:
//! written by hand, each key is one copy of a literal, each header is read once in
//! map order, and a JSON body is copied in as the op's handler wrote it. No value
//! tree and no serializer state sit in between.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, header};

use super::scan::{needs_care, special};
use crate::codec::spelling::canonical_name;
use crate::model::{OpResult, ResultBody, ResultParts, Text};

/// The opening of the native answer's list of results. Each list's key is one of
/// ours, needing no escape: the opening is written as one literal.
pub(crate) const RESULTS: &[u8] = br#"{"results":["#;

/// The opening of the Graph answer's list of responses, as [`RESULTS`].
pub(crate) const RESPONSES: &[u8] = br#"{"responses":["#;

/// Whether a header is exactly `content-type: application/json`, which nearly every
/// JSON answer carries and is written as a literal.
#[inline(always)]
fn is_json_type(name: &HeaderName, value: &HeaderValue) -> bool {
    name == header::CONTENT_TYPE && value.as_bytes() == b"application/json"
}

/// Whether `headers` is a JSON answer's own: exactly `content-type:
/// application/json` (not marked sensitive), and nothing else.
#[inline(always)]
pub(crate) fn is_json_alone(headers: &HeaderMap) -> bool {
    headers.len() == 1
        && headers
            .iter()
            .next()
            .is_some_and(|(name, value)| is_json_type(name, value) && !value.is_sensitive())
}

/// A JSON document being written.
pub(crate) struct Writer {
    out: Vec<u8>,
}

impl Writer {
    /// `{"<list>":[...]}`, opened by `opening` ([`RESULTS`] or [`RESPONSES`]), one
    /// object per result: `{"id":…,"status":…` then what `rest` writes of the
    /// result, then `}`.
    pub(crate) fn results(
        opening: &[u8],
        results: &[OpResult],
        mut rest: impl FnMut(&mut Self, ResultParts<'_>),
    ) -> Self {
        let mut out = Self::for_results(results);
        out.open_list(opening);
        out.result_items(results, &mut rest);
        out.close_list();
        out
    }

    /// `{"<list>":[`, the `opening` of [`Writer::results`] ([`RESULTS`] or
    /// [`RESPONSES`]): its results follow, each written by [`Writer::result_item`],
    /// then [`Writer::close_list`].
    pub(crate) fn open_list(&mut self, opening: &[u8]) {
        self.raw(opening);
    }

    /// `]}`, the end of what [`Writer::open_list`] opened.
    pub(crate) fn close_list(&mut self) {
        self.raw(b"]}");
    }

    /// `[...]`, one object per result, as [`Writer::results`] writes them.
    pub(crate) fn result_list(
        &mut self,
        results: &[OpResult],
        mut rest: impl FnMut(&mut Self, ResultParts<'_>),
    ) {
        self.raw(b"[");
        self.result_items(results, &mut rest);
        self.raw(b"]");
    }

    /// The results of a list, comma-separated.
    fn result_items(
        &mut self,
        results: &[OpResult],
        mut rest: impl FnMut(&mut Self, ResultParts<'_>),
    ) {
        for (index, result) in results.iter().enumerate() {
            self.result_item(index, result.parts(), &mut rest);
        }
    }

    /// The result at `index` of a list: `{"id":…,"status":…` then what `rest`
    /// writes of it, then `}`, after a comma unless it is the first.
    // Always inlined, as `opened` is: see `native::Answer::push`.
    #[inline(always)]
    pub(crate) fn result_item(
        &mut self,
        index: usize,
        result: ResultParts<'_>,
        rest: impl FnOnce(&mut Self, ResultParts<'_>),
    ) {
        // The separator apart: the opening is then of known length, copied in place.
        if index > 0 {
            self.out.push(b',');
        }
        self.opened(br#"{"id":""#, result, rest);
    }

    /// One result: `{"id":…,"status":…` then what `rest` writes of it, then `}`.
    pub(crate) fn result(
        &mut self,
        result: ResultParts<'_>,
        rest: impl FnOnce(&mut Self, ResultParts<'_>),
    ) {
        self.opened(br#"{"id":""#, result, rest);
    }

    /// One result after `open`, which ends in `{"id":"`.
    #[inline(always)]
    fn opened(
        &mut self,
        open: &[u8],
        result: ResultParts<'_>,
        rest: impl FnOnce(&mut Self, ResultParts<'_>),
    ) {
        // The id's quotes are written with the keys around them.
        self.raw(open);
        self.id_and_status(result.id, result.status);
        rest(self, result);
        self.raw(b"}");
    }

    /// An empty document.
    pub(crate) fn new() -> Self {
        Self { out: Vec::new() }
    }

    /// An empty document with room for `bytes`.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            out: Vec::with_capacity(bytes),
        }
    }

    /// A writer with room for `results` written with their headers and bodies, so
    /// that a document is rarely copied as it grows.
    fn for_results(results: &[OpResult]) -> Self {
        // Headers are guessed at 48 bytes each rather than read twice.
        let size: usize = results
            .iter()
            .map(|result| {
                64 + result.id.len() + 48 * result.headers.len() + result.body.as_bytes().len()
            })
            .sum();
        Self {
            out: Vec::with_capacity(size + 32),
        }
    }

    /// Appends bytes that are JSON already: punctuation, keys, validated bodies.
    #[inline]
    pub(crate) fn raw(&mut self, json: &[u8]) {
        self.out.extend_from_slice(json);
    }

    /// Appends `text` as a JSON string.
    pub(crate) fn string(&mut self, text: &str) {
        self.quoted(text.as_bytes());
    }

    /// Appends `text` as a JSON string, from its bytes: read as a `str`, it would be
    /// checked as UTF-8 once more.
    pub(crate) fn text(&mut self, text: &Text) {
        self.quoted(text.as_bytes());
    }

    /// Appends `text`, which is UTF-8, as a JSON string.
    fn quoted(&mut self, text: &[u8]) {
        self.out.push(b'"');
        self.inside(text);
        self.out.push(b'"');
    }

    /// Appends `text`, which is UTF-8, as the inside of a JSON string, escaped,
    /// without its quotes.
    // Always inlined: nearly every id and key needs no escape, which a check of
    // whole words says, and is then one copy; a call around it cost more.
    #[inline(always)]
    fn inside(&mut self, text: &[u8]) {
        if needs_care(text, false) {
            self.escaped(text);
        } else {
            self.out.extend_from_slice(text);
        }
    }

    /// Appends `text`, which is UTF-8 and needs some escape, as the inside of a
    /// JSON string.
    #[inline(never)]
    fn escaped(&mut self, text: &[u8]) {
        let mut rest = text;
        // Runs that need no escape are found with a tight scan and copied whole.
        while let Some(at) = rest.iter().position(|&b| special(b)) {
            self.out.extend_from_slice(&rest[..at]);
            self.escape(rest[at]);
            rest = &rest[at + 1..];
        }
        self.out.extend_from_slice(rest);
    }

    /// Appends the escape of a byte a JSON string may not hold as it is.
    fn escape(&mut self, b: u8) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        match b {
            b'"' => self.out.extend_from_slice(br#"\""#),
            b'\\' => self.out.extend_from_slice(br"\\"),
            b'\n' => self.out.extend_from_slice(br"\n"),
            b'\r' => self.out.extend_from_slice(br"\r"),
            b'\t' => self.out.extend_from_slice(br"\t"),
            _ => {
                let (high, low) = (HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]);
                self.out
                    .extend_from_slice(&[b'\\', b'u', b'0', b'0', high, low]);
            }
        }
    }

    /// Appends a status code.
    pub(crate) fn status(&mut self, status: http::StatusCode) {
        self.out.extend_from_slice(status.as_str().as_bytes());
    }

    /// Appends the inside of a result's `id` string (its opening quote written
    /// already), its closing quote, then `,"status":` and `status`.
    #[inline(always)]
    pub(crate) fn id_and_status(&mut self, id: &Text, status: http::StatusCode) {
        self.inside(id.as_bytes());
        // A status has three digits: with the key before it, one copy of known
        // length.
        let mut piece = *br#"","status":000"#;
        if let Some(digits) = piece.last_chunk_mut::<3>() {
            digits.copy_from_slice(status.as_str().as_bytes());
        }
        self.raw(&piece);
    }

    /// Appends `,"headers":` and a header map as an object, repeated headers as
    /// arrays of their values in order; names lower-case, or in canonical case
    /// (Graph's SDK looks up `Content-Type` spelled so).
    // Always inlined: the map of most JSON answers, their content type alone, is
    // one literal with its key, written in place without a call.
    #[inline(always)]
    pub(crate) fn headers(&mut self, headers: &HeaderMap, canonical: bool) {
        if is_json_alone(headers) {
            self.raw(if canonical {
                br#","headers":{"Content-Type":"application/json"}"#
            } else {
                br#","headers":{"content-type":"application/json"}"#
            });
        } else {
            self.raw(br#","headers":"#);
            self.members(headers, canonical);
        }
    }

    /// Appends a header map as an object, as [`Writer::headers`] does, whatever it
    /// holds.
    #[inline(never)]
    fn members(&mut self, headers: &HeaderMap, canonical: bool) {
        self.out.push(b'{');
        if headers.len() == headers.keys_len() {
            // Every name once, as in nearly every map: each entry is a member, with
            // no look at the next one.
            for (index, (name, value)) in headers.iter().enumerate() {
                if index > 0 {
                    self.out.push(b',');
                }
                // The header nearly every JSON answer carries is one literal: no
                // check of its value, and a copy of known length, made in place.
                if is_json_type(name, value) {
                    self.raw(if canonical {
                        br#""Content-Type":"application/json""#
                    } else {
                        br#""content-type":"application/json""#
                    });
                    continue;
                }
                self.name(name, canonical);
                self.value(value);
            }
        } else {
            // A map yields each name's values one after another, so a name's values
            // are the run of entries that share it: no lookups by name.
            let mut entries = headers.iter().peekable();
            let mut first = true;
            while let Some((name, value)) = entries.next() {
                if !first {
                    self.out.push(b',');
                }
                first = false;
                self.name(name, canonical);
                if entries.peek().is_some_and(|(next, _)| *next == name) {
                    self.out.push(b'[');
                    self.value(value);
                    while let Some((_, value)) = entries.next_if(|(next, _)| *next == name) {
                        self.out.push(b',');
                        self.value(value);
                    }
                    self.out.push(b']');
                } else {
                    self.value(value);
                }
            }
        }
        self.out.push(b'}');
    }

    /// Appends a header name and its colon, lower-case or in canonical case.
    // Always inlined: called, it costs about what skipping the look at the next
    // entry saves.
    #[inline(always)]
    fn name(&mut self, name: &HeaderName, canonical: bool) {
        // Header names are tokens: never anything a JSON string escapes.
        self.out.push(b'"');
        if canonical {
            self.out
                .extend_from_slice(canonical_name(name.as_str()).as_bytes());
        } else {
            self.out.extend_from_slice(name.as_str().as_bytes());
        }
        self.out.extend_from_slice(br#"":"#);
    }

    /// A header value as a string; a stray byte outside UTF-8 must not fail the
    /// whole document.
    fn value(&mut self, value: &HeaderValue) {
        let bytes = value.as_bytes();
        // Nearly every value is printable ASCII with no quote or backslash: a check
        // of whole words says so, and its bytes are the string's.
        if !needs_care(bytes, true) {
            self.out.push(b'"');
            self.out.extend_from_slice(bytes);
            self.out.push(b'"');
        } else {
            self.string(&String::from_utf8_lossy(bytes));
        }
    }

    /// Appends `,"body":` and the body as JSON, text or null, or `,"body_base64":`
    /// and the body's bytes in base64.
    #[inline]
    pub(crate) fn body(&mut self, body: &ResultBody) {
        // Every result has one: its key is one literal, comma and colon included.
        self.keyed(br#","body":"#, br#","body_base64":"#, body);
    }

    /// Appends `,"<name>":` and `body` as JSON, text or null, or
    /// `,"<name>_base64":` and its bytes in base64. (A member that follows another:
    /// the comma goes with its key, one copy fewer.)
    // Always inlined: it writes every result, and the compiler's choice to call it
    // (which varies with unrelated code) costs ~35 instructions per result.
    #[inline(always)]
    pub(crate) fn member(&mut self, name: &str, body: &ResultBody) {
        self.out.extend_from_slice(br#",""#);
        self.out.extend_from_slice(name.as_bytes());
        self.keyed(br#"":"#, br#"_base64":"#, body);
    }

    /// Appends `key` and `body` as JSON, text or null, or `base64_key` and its
    /// bytes in base64.
    #[inline(always)]
    fn keyed(&mut self, key: &[u8], base64_key: &[u8], body: &ResultBody) {
        match body {
            ResultBody::Empty => {
                self.raw(key);
                self.raw(b"null");
            }
            ResultBody::Json(json) => {
                self.raw(key);
                self.raw(json);
            }
            ResultBody::Text(text) => {
                self.raw(key);
                self.string(text);
            }
            ResultBody::Binary(bytes) => {
                self.raw(base64_key);
                self.base64(bytes);
            }
        }
    }

    /// Appends `bytes` in standard base64 as a JSON string.
    pub(crate) fn base64(&mut self, bytes: &[u8]) {
        let engine = base64::engine::general_purpose::STANDARD;
        self.out.push(b'"');
        let start = self.out.len();
        let len = base64::encoded_len(bytes.len(), true).unwrap_or_default();
        self.out.resize(start + len, 0);
        // The slice is exactly as long as the encoding, so this cannot fail.
        let written = engine
            .encode_slice(bytes, &mut self.out[start..])
            .unwrap_or_default();
        self.out.truncate(start + written);
        self.out.push(b'"');
    }

    /// The document's bytes.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    /// The document as a `200 OK` `application/json` response.
    pub(crate) fn into_response(self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::from(self.out));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn written(write: impl FnOnce(&mut Writer)) -> Value {
        let mut writer = Writer::new();
        write(&mut writer);
        serde_json::from_slice(&writer.out).unwrap()
    }

    /// The header map `headers` writes, without its key.
    fn header_map(headers: &HeaderMap, canonical: bool) -> String {
        let mut writer = Writer::new();
        writer.headers(headers, canonical);
        let written = String::from_utf8(writer.into_bytes()).unwrap();
        let map = written.strip_prefix(r#","headers":"#).unwrap();
        map.to_owned()
    }

    #[test]
    fn strings_escape_what_json_requires() {
        let text = "a\"b\\c\nd\re\tf\u{1}g\u{7f}h\u{e9}</";
        assert_eq!(written(|w| w.string(text)), json!(text));
        assert_eq!(written(|w| w.text(&Text::from(text))), json!(text));
    }

    #[test]
    fn ids_are_escaped_only_where_they_need_it() {
        let results = [
            OpResult::new("op1", http::StatusCode::OK),
            OpResult::new("a\"b\\c\u{1}d\u{e9}", http::StatusCode::NOT_FOUND),
        ];
        let document = Writer::results(RESULTS, &results, |_, _| {}).into_bytes();
        assert_eq!(
            serde_json::from_slice::<Value>(&document).unwrap(),
            json!({"results": [
                {"id": "op1", "status": 200},
                {"id": "a\"b\\c\u{1}d\u{e9}", "status": 404}
            ]})
        );
    }

    #[test]
    fn repeated_headers_become_arrays() {
        let mut headers = HeaderMap::new();
        headers.append("set-cookie", "a=1".parse().unwrap());
        headers.append("content-type", "text/plain".parse().unwrap());
        headers.append("set-cookie", "b=2".parse().unwrap());
        headers.append("x-bytes", HeaderValue::from_bytes(&[b'a', 0xff]).unwrap());
        let map = |headers: &HeaderMap, canonical| -> Value {
            serde_json::from_str(&header_map(headers, canonical)).unwrap()
        };
        assert_eq!(
            map(&headers, false),
            json!({"set-cookie": ["a=1", "b=2"], "content-type": "text/plain", "x-bytes": "a\u{fffd}"})
        );
        assert_eq!(
            map(&headers, true),
            json!({"Set-Cookie": ["a=1", "b=2"], "Content-Type": "text/plain", "X-Bytes": "a\u{fffd}"})
        );
        assert_eq!(map(&HeaderMap::new(), true), json!({}));
    }

    #[test]
    fn headers_named_once_are_plain_members() {
        let mut headers = HeaderMap::new();
        headers.append("content-type", "application/json".parse().unwrap());
        headers.append("x-custom", "a \"b\"".parse().unwrap());
        headers.append("x-bytes", HeaderValue::from_bytes(&[b'a', 0xff]).unwrap());
        assert_eq!(
            header_map(&headers, false),
            "{\"content-type\":\"application/json\",\"x-custom\":\"a \\\"b\\\"\",\"x-bytes\":\"a\u{fffd}\"}",
            "names in map order, each value once, escaped where it needs it"
        );
        assert_eq!(
            header_map(&headers, true),
            "{\"Content-Type\":\"application/json\",\"X-Custom\":\"a \\\"b\\\"\",\"X-Bytes\":\"a\u{fffd}\"}",
            "the same in canonical case"
        );
    }

    #[test]
    fn a_json_content_type_is_written_as_any_other_header() {
        for (value, canonical, written) in [
            (
                "application/json",
                false,
                r#"{"content-type":"application/json"}"#,
            ),
            (
                "application/json",
                true,
                r#"{"Content-Type":"application/json"}"#,
            ),
            (
                "Application/JSON",
                false,
                r#"{"content-type":"Application/JSON"}"#,
            ),
            (
                "application/json; charset=utf-8",
                false,
                r#"{"content-type":"application/json; charset=utf-8"}"#,
            ),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(header_map(&headers, canonical), written);
        }
        let mut headers = HeaderMap::new();
        headers.insert("x-other", "application/json".parse().unwrap());
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert_eq!(
            header_map(&headers, true),
            r#"{"X-Other":"application/json","Content-Type":"application/json"}"#
        );
        headers.remove("x-other");
        headers.append(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(
            header_map(&headers, false),
            r#"{"content-type":["application/json","text/plain"]}"#,
            "a content type with a second value is no literal"
        );
    }

    #[test]
    fn bodies_are_json_text_null_or_base64() {
        let body = |body: ResultBody| {
            written(|w| {
                w.raw(br#"{"a":1"#);
                w.body(&body);
                w.raw(b"}");
            })
        };
        let json = Bytes::from_static(br#"{"a": [1, "x"]}"#);
        assert_eq!(
            body(ResultBody::Json(json)),
            json!({"a": 1, "body": {"a": [1, "x"]}})
        );
        assert_eq!(
            body(ResultBody::Text("hi\n".into())),
            json!({"a": 1, "body": "hi\n"})
        );
        assert_eq!(body(ResultBody::Empty), json!({"a": 1, "body": null}));
        assert_eq!(
            body(ResultBody::Binary(Bytes::from_static(&[0xff, 0]))),
            json!({"a": 1, "body_base64": "/wA="})
        );
    }
}
