//! Pieces the JSON formats share: depth checking, typed field access with pointers,
//! and result headers and bodies as JSON.

use base64::Engine as _;
use http::HeaderMap;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::model::ResultBody;
use crate::problem::Problem;

/// How deep a batch document may nest.
pub(crate) const MAX_DEPTH: usize = 128;

/// Refuses documents nested deeper than [`MAX_DEPTH`], before any parser recurses
/// into them.
pub(crate) fn check_depth(body: &[u8]) -> Result<(), Problem> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
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
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    deserializer.disable_recursion_limit();
    let value = T::deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|err| Problem::bad_request(format!("the batch is not valid JSON: {err}")))?;
    Ok(value)
}

/// Parses one field's raw JSON as `T`; on failure, a 400 at that field.
pub(crate) fn field<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    op: Option<usize>,
    pointer: &str,
    expected: &str,
) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    deserializer.disable_recursion_limit();
    T::deserialize(&mut deserializer).map_err(|_| {
        Problem::bad_request(format!("{pointer} must be {expected}"))
            .at(op, Some(pointer.to_owned()))
    })
}

/// A header map as a JSON object: lower-case names, repeated headers as arrays.
pub(crate) struct HeaderObject<'a>(pub &'a HeaderMap);

impl Serialize for HeaderObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.keys_len()))?;
        for name in self.0.keys() {
            let mut values = self.0.get_all(name).iter();
            let first = values.next();
            if values.next().is_none() {
                map.serialize_entry(name.as_str(), &first.map(|v| Lossy(v.as_bytes())))?;
            } else {
                map.serialize_entry(name.as_str(), &Values(self.0, name))?;
            }
        }
        map.end()
    }
}

struct Values<'a>(&'a HeaderMap, &'a http::HeaderName);

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for value in self.0.get_all(self.1) {
            seq.serialize_element(&Lossy(value.as_bytes()))?;
        }
        seq.end()
    }
}

/// Header bytes as a string; values are almost always ASCII, and a stray byte
/// outside UTF-8 must not fail the whole response.
struct Lossy<'a>(&'a [u8]);

impl Serialize for Lossy<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&String::from_utf8_lossy(self.0))
    }
}

/// Writes `body` into a JSON map as `body` (JSON, text or null) or `body_base64`.
pub(crate) fn serialize_body<M: SerializeMap>(
    map: &mut M,
    body: &ResultBody,
) -> Result<(), M::Error> {
    match body {
        ResultBody::Empty => map.serialize_entry("body", &()),
        ResultBody::Json(raw) => map.serialize_entry("body", raw),
        ResultBody::Text(text) => map.serialize_entry("body", text),
        ResultBody::Binary(bytes) => map.serialize_entry(
            "body_base64",
            &base64::engine::general_purpose::STANDARD.encode(bytes),
        ),
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
    fn repeated_headers_become_arrays() {
        let mut headers = HeaderMap::new();
        headers.append("set-cookie", "a=1".parse().unwrap());
        headers.append("set-cookie", "b=2".parse().unwrap());
        headers.append("content-type", "text/plain".parse().unwrap());
        let json = serde_json::to_value(HeaderObject(&headers)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"set-cookie": ["a=1", "b=2"], "content-type": "text/plain"})
        );
    }
}
