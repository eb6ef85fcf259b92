//! One op's answer, as the caller sees it.

use batch_core::{OpResult, ResultBody};
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

/// The result of one op: its status, headers and body, and where it stood in the
/// caller's list.
///
/// The body is as the server classified it: JSON kept verbatim, other UTF-8 as text,
/// anything else as bytes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OpResponse {
    /// The op's position in the list it was sent in.
    pub index: usize,
    /// The op's id: the one it was given, else its position as a decimal string.
    pub id: String,
    /// The op's status: its handler's, or the server's for an op it did not run
    /// (424 when a dependency failed, 504 on timeout, ...).
    pub status: StatusCode,
    /// The op's response headers (none when the batch asked for none).
    pub headers: HeaderMap,
    /// The op's response body.
    pub body: ResultBody,
    /// How many times the op was sent: more than one when it was retried.
    pub attempts: u32,
}

impl OpResponse {
    pub(crate) fn new(index: usize, id: String, result: OpResult, attempts: u32) -> Self {
        Self {
            index,
            id,
            status: result.status,
            headers: result.headers,
            body: result.body,
            attempts,
        }
    }

    /// Whether the op succeeded: a status below 400.
    pub fn is_success(&self) -> bool {
        self.status.as_u16() < 400
    }

    /// The body read as JSON into `T` (any body that is JSON text, whatever its type).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(self.body.as_bytes())
    }

    /// The body as text, when it is UTF-8 (JSON included); `None` for bytes.
    pub fn text(&self) -> Option<&str> {
        match &self.body {
            ResultBody::Empty => Some(""),
            ResultBody::Text(text) => Some(text),
            ResultBody::Json(json) => std::str::from_utf8(json).ok(),
            ResultBody::Binary(_) => None,
        }
    }

    /// The body's bytes, as the handler wrote them.
    pub fn bytes(&self) -> &[u8] {
        self.body.as_bytes()
    }

    /// The op's own error, when it failed (status 400 or more): the body's `error`
    /// or `detail` member when it has one (the server's own results say
    /// `{"error": "dependency_failed"}`, problem documents have `detail`), else the
    /// status's reason.
    ///
    /// ```
    /// use batch_client::OpResponse;
    ///
    /// # fn check(response: &OpResponse) {
    /// if let Some(error) = response.error() {
    ///     eprintln!("op {} failed with {}: {error}", response.id, response.status);
    /// }
    /// # }
    /// ```
    pub fn error(&self) -> Option<String> {
        if self.is_success() {
            return None;
        }
        let said = self.json::<serde_json::Value>().ok().and_then(|json| {
            ["error", "detail"]
                .into_iter()
                .find_map(|key| json.get(key)?.as_str().map(str::to_owned))
        });
        Some(said.unwrap_or_else(|| {
            self.status
                .canonical_reason()
                .unwrap_or("failed")
                .to_owned()
        }))
    }

    /// The result in the model's own type, for [`batch_core::encode`] or serde.
    pub fn to_result(&self) -> OpResult {
        let mut result = OpResult::new(self.id.clone(), self.status);
        result.headers = self.headers.clone();
        result.body = self.body.clone();
        result
    }
}

/// Written as the native format writes a result, with `index` and `attempts` added:
/// `{"index": 0, "id": "0", "status": 200, "headers": {...}, "body": ..., "attempts": 1}`.
impl serde::Serialize for OpResponse {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let mut object = serde_json::Map::new();
        object.insert("index".to_owned(), self.index.into());
        match serde_json::to_value(self.to_result()).map_err(S::Error::custom)? {
            serde_json::Value::Object(result) => object.extend(result),
            other => return Err(S::Error::custom(format!("a result written as {other}"))),
        }
        object.insert("attempts".to_owned(), self.attempts.into());
        object.serialize(serializer)
    }
}
