//! The two wire formats the client speaks: each op written on its own (so a batch's
//! size is known before it is assembled), and a batch answer read back into results
//! in the order the ops were sent.

use base64::Engine as _;
use batch_core::{BatchResponse, OpResult, Operation, ResultBody};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::Error;

/// The wire format batches are sent in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireFormat {
    /// The native format: `{"ops": [...]}` answered `{"results": [...]}`.
    #[default]
    Native,
    /// Microsoft Graph / OData JSON batching: `{"requests": [...]}` answered
    /// `{"responses": [...]}`; every op carries an id.
    Graph,
}

impl WireFormat {
    /// What a batch body starts and ends with around its comma-separated ops.
    pub(crate) fn envelope(self) -> (&'static [u8], &'static [u8]) {
        match self {
            WireFormat::Native => (br#"{"ops":["#, b"]}"),
            WireFormat::Graph => (br#"{"requests":["#, b"]}"),
        }
    }

    /// One op as this format writes it, with the id it travels under (`None`: the
    /// op's position in its batch, which only the native format allows) and the
    /// dependencies it keeps.
    pub(crate) fn op(self, op: &Operation, id: Option<&str>, depends_on: &[String]) -> Vec<u8> {
        match self {
            WireFormat::Native => {
                let mut sent = op.clone();
                sent.id = id.map(|id| id.to_owned().into());
                sent.depends_on = depends_on.to_vec();
                serde_json::to_vec(&sent).unwrap_or_default()
            }
            WireFormat::Graph => graph_request(op, id.unwrap_or_default(), depends_on),
        }
    }

    /// Whether every op must carry an id in this format.
    pub(crate) fn needs_ids(self) -> bool {
        self == WireFormat::Graph
    }

    /// The results of a batch answer, one per op sent, in the order sent; `ids` are
    /// the ids the ops travelled under.
    pub(crate) fn results(self, body: &[u8], ids: &[String]) -> Result<Vec<OpResult>, Error> {
        let results = match self {
            WireFormat::Native => {
                let response: BatchResponse = serde_json::from_slice(body)
                    .map_err(|err| Error::Answer(format!("not a native batch answer: {err}")))?;
                response.results
            }
            WireFormat::Graph => graph_results(body, ids)?,
        };
        if results.len() != ids.len() {
            return Err(Error::Answer(format!(
                "{} results for {} ops",
                results.len(),
                ids.len()
            )));
        }
        Ok(results)
    }
}

/// A Graph request entry: JSON bodies embedded, any other body in base64 with a
/// content type that says it is not JSON.
fn graph_request(op: &Operation, id: &str, depends_on: &[String]) -> Vec<u8> {
    let mut headers = serde_json::Map::new();
    for (name, value) in &op.headers {
        headers.insert(name.to_string(), value.as_str().into());
    }
    let content_type = op
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.as_str());
    let mut entry = serde_json::Map::new();
    entry.insert("id".to_owned(), id.into());
    entry.insert(
        "method".to_owned(),
        op.method.as_deref().unwrap_or("GET").into(),
    );
    entry.insert("url".to_owned(), op.url.as_str().into());
    if !op.body.is_empty() {
        let json = content_type.is_none_or(is_json)
            && serde_json::from_slice::<&RawValue>(&op.body).is_ok();
        let body = if json {
            serde_json::from_slice(&op.body).unwrap_or_default()
        } else {
            if content_type.is_none() {
                headers.insert("content-type".to_owned(), "application/octet-stream".into());
            }
            base64::engine::general_purpose::STANDARD
                .encode(&op.body)
                .into()
        };
        entry.insert("body".to_owned(), body);
    }
    if !headers.is_empty() {
        entry.insert("headers".to_owned(), headers.into());
    }
    if !depends_on.is_empty() {
        entry.insert("dependsOn".to_owned(), depends_on.to_vec().into());
    }
    if let Some(condition) = &op.condition {
        entry.insert("if".to_owned(), condition.as_str().into());
    }
    serde_json::to_vec(&entry).unwrap_or_default()
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

#[derive(Deserialize)]
struct GraphAnswer<'a> {
    #[serde(borrow)]
    responses: Vec<GraphResponse<'a>>,
}

#[derive(Deserialize)]
struct GraphResponse<'a> {
    id: String,
    status: u16,
    #[serde(default)]
    headers: serde_json::Map<String, serde_json::Value>,
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
}

/// Graph answers may come in any order: each is matched to its op by id, ignoring
/// case as Graph does.
fn graph_results(body: &[u8], ids: &[String]) -> Result<Vec<OpResult>, Error> {
    let answer: GraphAnswer<'_> = serde_json::from_slice(body)
        .map_err(|err| Error::Answer(format!("not a Graph batch answer: {err}")))?;
    let mut slots: Vec<Option<OpResult>> = vec![None; ids.len()];
    for response in answer.responses {
        let position = ids
            .iter()
            .position(|id| id.eq_ignore_ascii_case(&response.id))
            .ok_or_else(|| Error::Answer(format!("an answer for unknown id {:?}", response.id)))?;
        slots[position] = Some(graph_result(response)?);
    }
    slots
        .into_iter()
        .zip(ids)
        .map(|(slot, id)| slot.ok_or_else(|| Error::Answer(format!("no answer for op {id:?}"))))
        .collect()
}

fn graph_result(response: GraphResponse<'_>) -> Result<OpResult, Error> {
    let status = StatusCode::from_u16(response.status)
        .map_err(|_| Error::Answer(format!("status {}", response.status)))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &response.headers {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        let values = match value {
            serde_json::Value::Array(values) => values.iter().collect(),
            value => vec![value],
        };
        for value in values.into_iter().filter_map(serde_json::Value::as_str) {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(name.clone(), value);
            }
        }
    }
    let json_typed = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json);
    let body = match response.body {
        None => Bytes::new(),
        Some(raw) if json_typed || !raw.get().starts_with('"') => {
            Bytes::copy_from_slice(raw.get().as_bytes())
        }
        Some(raw) => {
            let text: String = serde_json::from_str(raw.get())
                .map_err(|err| Error::Answer(format!("a Graph body: {err}")))?;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|err| Error::Answer(format!("a Graph body that is not base64: {err}")))?
                .into()
        }
    };
    let mut result = OpResult::new(response.id, status);
    result.body = ResultBody::classify(&headers, body);
    result.headers = headers;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_requests_embed_json_and_encode_other_bodies() {
        let mut op = Operation::new("POST", "/items");
        op.headers
            .push(("content-type".into(), "application/json".into()));
        op.body = Bytes::from_static(br#"{"name":"pen"}"#);
        let entry: serde_json::Value =
            serde_json::from_slice(&WireFormat::Graph.op(&op, Some("new"), &["a".into()])).unwrap();
        assert_eq!(entry["id"], "new");
        assert_eq!(entry["body"]["name"], "pen");
        assert_eq!(entry["dependsOn"], serde_json::json!(["a"]));

        let mut raw = Operation::new("PUT", "/echo");
        raw.body = Bytes::from_static(&[0xff]);
        let entry: serde_json::Value =
            serde_json::from_slice(&WireFormat::Graph.op(&raw, Some("0"), &[])).unwrap();
        assert_eq!(entry["body"], "/w==");
        assert_eq!(entry["headers"]["content-type"], "application/octet-stream");
    }

    #[test]
    fn conditions_travel_in_both_formats() {
        let mut op = Operation::new("GET", "/health");
        op.condition = Some("not $a/$succeeded".into());
        for format in [WireFormat::Graph, WireFormat::Native] {
            let entry: serde_json::Value =
                serde_json::from_slice(&format.op(&op, Some("b"), &[])).unwrap();
            assert_eq!(entry["if"], "not $a/$succeeded", "{format:?}");
        }
    }

    #[test]
    fn graph_answers_are_matched_by_id_whatever_their_order() {
        let answer = br#"{"responses": [
            {"id": "B", "status": 200, "headers": {"Content-Type": "text/plain"}, "body": "aGk="},
            {"id": "a", "status": 201, "headers": {"Content-Type": "application/json"}, "body": {"x": 1}}
        ]}"#;
        let results = WireFormat::Graph
            .results(answer, &["a".into(), "b".into()])
            .unwrap();
        assert_eq!(results[0].status, 201);
        assert_eq!(
            results[0].body,
            ResultBody::Json(Bytes::from(r#"{"x": 1}"#))
        );
        assert_eq!(results[1].body, ResultBody::Text("hi".into()));
        assert!(matches!(
            WireFormat::Graph.results(answer, &["a".into(), "c".into()]),
            Err(Error::Answer(_))
        ));
    }
}
