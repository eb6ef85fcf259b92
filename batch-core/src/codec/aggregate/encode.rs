//! Writing the aggregate answer: one object from path to body.

use base64::Engine as _;
use bytes::Bytes;
use http::Response;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::codec::json::{self, RawJson};
use crate::model::{BatchResponse, Format, ResultBody};

/// The aggregate answer as a `200 OK` `application/json` response.
pub(crate) fn encode(response: &BatchResponse) -> Response<Bytes> {
    json::response(&Document(response))
}

struct Document<'a>(&'a BatchResponse);

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let response = self.0;
        // The paths the client sent, when it sent this format; otherwise the ids.
        let paths = match response.layout.format {
            Format::Aggregate => &response.layout.labels[..],
            _ => &[],
        };
        let mut map = serializer.serialize_map(Some(response.results.len()))?;
        for (index, result) in response.results.iter().enumerate() {
            let path = paths
                .get(index)
                .and_then(Option::as_deref)
                .unwrap_or(&result.id);
            match &result.body {
                ResultBody::Empty => map.serialize_entry(path, &())?,
                ResultBody::Json(json) => map.serialize_entry(path, &RawJson(json))?,
                ResultBody::Text(text) => map.serialize_entry(path, text)?,
                ResultBody::Binary(bytes) => map.serialize_entry(
                    path,
                    &base64::engine::general_purpose::STANDARD.encode(bytes),
                )?,
            }
        }
        map.end()
    }
}
