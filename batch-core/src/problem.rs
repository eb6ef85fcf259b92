//! RFC 9457 problem details: the body of every batch-level error.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

/// A batch-level error, answered as `application/problem+json` (RFC 9457).
///
/// Nothing in the batch has run when a `Problem` is returned: it describes why the
/// batch itself was refused. `op` and `pointer` locate the fault when it lies in one
/// operation (the op's index and a JSON pointer into the request document).
///
/// ```
/// use batch_core::Problem;
/// use http::StatusCode;
///
/// let problem = Problem::payload_too_large(1024);
/// assert_eq!(problem.status(), StatusCode::PAYLOAD_TOO_LARGE);
/// let response = problem.into_response();
/// assert_eq!(response.headers()["content-type"], "application/problem+json");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(serialize_with = "serialize_status")]
    status: StatusCode,
    title: &'static str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    op: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pointer: Option<String>,
    /// The request body was not read to its end, so its connection cannot carry
    /// another request.
    #[serde(skip)]
    close_connection: bool,
    /// Seconds after which the client may try again, answered as `retry-after`.
    #[serde(skip)]
    retry_after: Option<u32>,
}

fn serialize_status<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl Problem {
    /// A problem answered with `status`, explained by `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            title: status.canonical_reason().unwrap_or("Error"),
            detail: detail.into(),
            op: None,
            pointer: None,
            close_connection: false,
            retry_after: None,
        }
    }

    /// 400: the request document is malformed (not JSON, wrong types, missing fields).
    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 422: the document is well formed but asks for something not allowed.
    pub(crate) fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    /// 413 for a batch body larger than `limit` bytes.
    ///
    /// Adapters use it when the outer body is refused while being read.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the batch body is larger than the limit of {limit} bytes"),
        )
    }

    /// 400 for a batch body that could not be read (the connection failed mid-body).
    pub fn unreadable_body() -> Self {
        Self::bad_request("the batch body could not be read")
    }

    /// Marks the problem as answered before the request body was read to its end:
    /// the response says `connection: close`, so a client does not send its next
    /// request into a connection the server is closing. (HTTP/2 servers drop the
    /// header; there a stream ends on its own.)
    pub(crate) fn closing_connection(mut self) -> Self {
        self.close_connection = true;
        self
    }

    /// Tells the client it may retry after `seconds` (`retry-after`).
    pub(crate) fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Locates the fault at operation `op`, optionally at a JSON `pointer`.
    pub(crate) fn at(mut self, op: Option<usize>, pointer: Option<String>) -> Self {
        self.op = op;
        self.pointer = pointer;
        self
    }

    /// The HTTP status this problem is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The human-readable explanation.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The index of the offending operation, when the fault lies in one.
    pub fn op(&self) -> Option<usize> {
        self.op
    }

    /// A JSON pointer to the offending field, when the format has one.
    pub fn pointer(&self) -> Option<&str> {
        self.pointer.as_deref()
    }

    /// Renders the problem as an `application/problem+json` response.
    pub fn into_response(self) -> Response<Bytes> {
        // Serialising a struct of strings and integers cannot fail.
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = Response::new(Bytes::from(body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.close_connection {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.title,
            self.detail
        )
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_carries_status_title_detail_and_location() {
        let problem = Problem::unprocessable("duplicate id").at(Some(3), Some("/ops/3/id".into()));
        let response = problem.into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "status": 422, "title": "Unprocessable Entity", "detail": "duplicate id",
                "op": 3, "pointer": "/ops/3/id"
            })
        );
    }

    #[test]
    fn an_unread_body_closes_the_connection() {
        let closing = Problem::payload_too_large(1)
            .closing_connection()
            .into_response();
        assert_eq!(closing.headers()["connection"], "close");
        let body: serde_json::Value = serde_json::from_slice(closing.body()).unwrap();
        assert!(body.get("close_connection").is_none());
        assert!(
            !Problem::payload_too_large(1)
                .into_response()
                .headers()
                .contains_key("connection")
        );
    }

    #[test]
    fn location_is_omitted_when_unknown() {
        let body: serde_json::Value =
            serde_json::from_slice(Problem::payload_too_large(10).into_response().body()).unwrap();
        assert!(body.get("op").is_none() && body.get("pointer").is_none());
        assert_eq!(body["status"], 413);
    }
}
