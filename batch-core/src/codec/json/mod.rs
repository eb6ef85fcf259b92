//! Pieces the JSON formats share: shape sniffing, depth checking, typed field access
//! with pointers, op headers and bodies from JSON, and result headers and bodies as
//! JSON.

use std::fmt::Display;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

pub(crate) mod scan;
mod write;

use scan::MAX_DEPTH;

pub(crate) use write::{RESPONSES, RESULTS, Writer, is_json_alone};

use crate::model::{Field, Format, Operation, Text, is_json_content_type, shared};
use crate::problem::Problem;

/// The format a JSON object names by its first top-level key that decides: `ops`
/// (native) or `requests` (Graph). Values are skipped, not parsed, and the scan stops
/// at the deciding key; `None` when no key decides or the object is malformed.
pub(crate) fn object_shape(body: &[u8]) -> Option<Format> {
    let mut at = body.iter().position(|&b| b == b'{')? + 1;
    loop {
        at = skip_whitespace(body, at);
        let key_end = string_end(body, at)?;
        match body.get(at + 1..key_end)? {
            b"ops" => return Some(Format::Native),
            b"requests" => return Some(Format::Graph),
            _ => {}
        }
        at = skip_whitespace(body, key_end + 1);
        if body.get(at) != Some(&b':') {
            return None;
        }
        // Skip the value: strings and nesting are tracked until a `,` or `}` at the
        // object's own level.
        let mut depth = 0usize;
        at += 1;
        loop {
            match *body.get(at)? {
                b'"' => at = string_end(body, at)?,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return None,
                b'}' | b']' => depth -= 1,
                b',' if depth == 0 => break,
                _ => {}
            }
            at += 1;
        }
        at += 1;
    }
}

fn skip_whitespace(body: &[u8], mut at: usize) -> usize {
    while body.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

/// The index of the quote closing the string that opens at `start`.
fn string_end(body: &[u8], start: usize) -> Option<usize> {
    if body.get(start) != Some(&b'"') {
        return None;
    }
    let mut at = start + 1;
    loop {
        match *body.get(at)? {
            b'\\' => at += 2,
            b'"' => return Some(at),
            _ => at += 1,
        }
    }
}

/// The JSON pointer of `field` of op `op` in a document whose ops are the array
/// `list`, in a format that names the url, id and dependency fields
/// `[url, id, depends_on]`.
pub(crate) fn pointer(
    list: &str,
    op: usize,
    field: &Field,
    [url, id, depends_on]: [&str; 3],
) -> String {
    let name = match field {
        Field::Url => url.to_owned(),
        Field::Method => "method".to_owned(),
        Field::Id => id.to_owned(),
        Field::Headers => "headers".to_owned(),
        Field::Header(name) => format!("headers/{}", pointer_token(name)),
        Field::DependsOn(i) => format!("{depends_on}/{i}"),
        Field::Body => "body".to_owned(),
        Field::Condition => "if".to_owned(),
    };
    format!("/{list}/{op}/{name}")
}

/// Escapes one reference token of a JSON pointer (RFC 6901).
pub(crate) fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Refuses documents nested deeper than [`MAX_DEPTH`], before any parser recurses
/// into them.
pub(crate) fn check_depth(body: &[u8]) -> Result<(), Problem> {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&b) = body.get(at) {
        at += 1;
        match b {
            // A string is skipped by scanning for its quote: most of a batch is strings.
            b'"' => loop {
                let rest = body.get(at..).unwrap_or_default();
                let Some(end) = rest.iter().position(|&b| b == b'"' || b == b'\\') else {
                    at = body.len();
                    break;
                };
                at += end + 1;
                if rest[end] == b'"' {
                    break;
                }
                // A backslash: the byte after it is escaped, whatever it is.
                at += 1;
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Problem::bad_request(format!(
                        "the document nests deeper than {MAX_DEPTH} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses a whole document as `T`, allowing the nesting [`check_depth`] allowed.
pub(crate) fn parse_document<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Problem> {
    check_depth(body)?;
    parse_checked(body)
        .map_err(|err| Problem::bad_request(format!("the batch is not valid JSON: {err}")))
}

/// Parses a whole document whose depth [`check_depth`] has passed as `T`.
pub(crate) fn parse_checked<'a, T: Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    deserializer.disable_recursion_limit();
    let value = T::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Where field `name` of op `index` sits in a document whose ops are the array
/// `list`: `/{list}/{index}/{name}`, or the op itself for an empty name. Written out
/// only for a fault, so decoding a valid op formats no pointer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At {
    pub(crate) list: &'static str,
    pub(crate) index: usize,
    pub(crate) name: &'static str,
}

impl Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}/{}", self.list, self.index)?;
        if !self.name.is_empty() {
            write!(f, "/{}", self.name)?;
        }
        Ok(())
    }
}

/// Parses one field's raw JSON as `T`; on failure, a 400 at that field.
///
/// The pointer is written out only on failure: a valid document formats none.
pub(crate) fn field<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    op: Option<usize>,
    pointer: impl Display,
    expected: &str,
) -> Result<T, Problem> {
    field_text(raw.get(), op, pointer, expected)
}

/// [`field`] of a value's JSON text.
pub(crate) fn field_text<'a, T: Deserialize<'a>>(
    raw: &'a str,
    op: Option<usize>,
    pointer: impl Display,
    expected: &str,
) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    deserializer.disable_recursion_limit();
    T::deserialize(&mut deserializer).map_err(|_| {
        Problem::bad_request(format!("{pointer} must be {expected}"))
            .at(op, Some(pointer.to_string()))
    })
}

/// [`field`] for a field that may be absent.
pub(crate) fn optional<'a, T: Deserialize<'a>>(
    raw: Option<&'a RawValue>,
    op: Option<usize>,
    pointer: impl Display,
    expected: &str,
) -> Result<Option<T>, Problem> {
    raw.map(|raw| field(raw, op, pointer, expected)).transpose()
}

/// JSON text that parsed once already ([`ResultBody::Json`]), serialised verbatim.
pub(crate) struct RawJson<'a>(pub(crate) &'a [u8]);

impl Serialize for RawJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Borrowing parses without copying; serde_json writes a `RawValue` as is.
        let raw: &RawValue = serde_json::from_slice(self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// A `200 OK` `application/json` response of `document`.
pub(crate) fn response<T: Serialize>(document: &T) -> Response<Bytes> {
    // Every document is built of strings, numbers, header maps and validated raw
    // JSON, which always serialise.
    let body = serde_json::to_vec(document).unwrap_or_default();
    let mut http = Response::new(Bytes::from(body));
    http.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    http
}

/// A JSON object as its entries in document order, repeated keys kept: header
/// and query order is the client's to choose.
pub(crate) struct Entries<V>(pub(crate) Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, V>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// A string or an array of strings, as `depends_on` and header values may be.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany<'a> {
    #[serde(borrow)]
    One(std::borrow::Cow<'a, str>),
    Many(Vec<String>),
}

impl OneOrMany<'_> {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one.into_owned()],
            Self::Many(many) => many,
        }
    }
}

/// What an op's `headers` must be.
pub(crate) const HEADERS: &str = "an object of strings or arrays of strings";

/// An op's `headers` object (name to a string or an array of strings), in document
/// order, one entry per value.
pub(crate) fn headers(
    raw: &RawValue,
    op: usize,
    pointer: impl Display,
) -> Result<Vec<(Text, Text)>, Problem> {
    field(raw, Some(op), pointer, HEADERS).map(header_list)
}

/// A parsed `headers` object as a list, one entry per value.
pub(crate) fn header_list(headers: Entries<OneOrMany<'_>>) -> Vec<(Text, Text)> {
    let mut out = Vec::with_capacity(headers.0.len());
    for (name, values) in headers.0 {
        let name = Text::from(name);
        for value in values.into_vec() {
            out.push((name.clone(), value.into()));
        }
    }
    out
}

/// The bytes of a JSON `body` field: JSON text (`application/json` unless the op
/// declares a content type), or a string's own bytes when the op declares a content
/// type that is not JSON.
///
/// JSON text is shared with `document`, the batch body it was parsed from, not copied.
pub(crate) fn json_body(operation: &mut Operation, raw: &str, document: &Bytes) -> Bytes {
    match declared_content_type(operation) {
        None => set_default_content_type(operation, "application/json"),
        Some(content_type) if !is_json_content_type(content_type) => {
            if let Ok(text) = serde_json::from_str::<String>(raw) {
                return Bytes::from(text);
            }
        }
        Some(_) => {}
    }
    shared(document, raw)
}

/// The content type the op sets itself, if any.
pub(crate) fn declared_content_type(operation: &Operation) -> Option<&str> {
    operation
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.as_str())
}

/// Gives the op `content_type` unless it declares one.
pub(crate) fn set_default_content_type(operation: &mut Operation, content_type: &str) {
    if declared_content_type(operation).is_none() {
        operation
            .headers
            .push((Text::from_static("content-type"), content_type.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_only_structure_outside_strings() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check_depth(deep(MAX_DEPTH).as_bytes()).is_ok());
        assert_eq!(
            check_depth(deep(MAX_DEPTH + 1).as_bytes())
                .unwrap_err()
                .status(),
            400
        );
        let in_string = format!(r#"{{"a": "{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
        assert!(check_depth(in_string.as_bytes()).is_ok());
        assert!(parse_document::<serde_json::Value>(deep(MAX_DEPTH).as_bytes()).is_ok());
    }

    #[test]
    fn object_shape_reads_top_level_keys_only() {
        let shape = |s: &str| object_shape(s.as_bytes());
        assert_eq!(shape(r#"{"ops": []}"#), Some(Format::Native));
        assert_eq!(
            shape(r#"{"sequential": true, "ops": []}"#),
            Some(Format::Native)
        );
        assert_eq!(shape(r#"{"requests": []}"#), Some(Format::Graph));
        assert_eq!(
            shape(r#"{"a": {"ops": [1, "}"]}, "b": "\\", "requests": 1}"#),
            Some(Format::Graph)
        );
        assert_eq!(shape(r#"{"a": 1}"#), None);
        assert_eq!(shape(r#"{"a": [}"#), None);
        assert_eq!(shape("{"), None);
        assert_eq!(shape(r#"{"unterminated"#), None);
    }
}
