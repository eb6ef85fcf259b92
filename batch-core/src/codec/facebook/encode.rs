//! Writing the Facebook Graph answer: a JSON array of `{code, headers, body}`, the
//! body always a string.

use base64::Engine as _;
use bytes::Bytes;
use http::Response;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::codec::json;
use crate::codec::spelling::canonical_name;
use crate::model::{BatchResponse, OpResult, ResultBody};

/// The Facebook answer as a `200 OK` `application/json` response.
pub(crate) fn encode(response: &BatchResponse) -> Response<Bytes> {
    json::response(&Document(response))
}

struct Document<'a>(&'a BatchResponse);

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.results.len()))?;
        for result in &self.0.results {
            if result.silent && result.status.is_success() {
                seq.serialize_element(&())?;
            } else {
                seq.serialize_element(&Item {
                    result,
                    include_headers: self.0.include_headers,
                })?;
            }
        }
        seq.end()
    }
}

struct Item<'a> {
    result: &'a OpResult,
    include_headers: bool,
}

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let result = self.result;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("code", &result.status.as_u16())?;
        if self.include_headers {
            map.serialize_entry("headers", &NameValues(&result.headers))?;
        }
        match &result.body {
            ResultBody::Empty => map.serialize_entry("body", &())?,
            ResultBody::Json(json) => {
                map.serialize_entry("body", &String::from_utf8_lossy(json))?
            }
            ResultBody::Text(text) => map.serialize_entry("body", text)?,
            ResultBody::Binary(bytes) => map.serialize_entry(
                "body",
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            )?,
        }
        map.end()
    }
}

/// Headers as Facebook lists them: `[{"name": "Content-Type", "value": "..."}]`, one
/// entry per value.
struct NameValues<'a>(&'a http::HeaderMap);

impl Serialize for NameValues<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (name, value) in self.0 {
            let mut entry = serde_json::Map::new();
            entry.insert("name".into(), canonical_name(name.as_str()).into());
            entry.insert(
                "value".into(),
                String::from_utf8_lossy(value.as_bytes())
                    .into_owned()
                    .into(),
            );
            seq.serialize_element(&entry)?;
        }
        seq.end()
    }
}
