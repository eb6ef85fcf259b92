//! RFC 9457 problem details: the body of every batch-level error.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode, header};
use serde::Serialize;

/// The methods the batch endpoint answers, as its `allow` header lists them.
pub(crate) const ALLOW: &str = "POST, OPTIONS";

/// A batch-level error, answered as `application/problem+json` (RFC 9457).
///
/// Nothing in the batch has run when a `Problem` is returned: it describes why the
/// batch itself was refused. `op` and `pointer` locate the fault when it lies in one
/// operation (the op's index and a JSON pointer into the request document).
///
/// A batch hook refuses a batch with one; it can point at the op at fault and say
/// when to come back:
///
/// ```
/// use batch_core::Problem;
/// use http::StatusCode;
///
/// let problem = Problem::new(StatusCode::TOO_MANY_REQUESTS, "too many writes this minute")
///     .at_op(3)
///     .retry_after(60);
/// assert_eq!(problem.op(), Some(3));
/// let response = problem.into_response();
/// assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
/// assert_eq!(response.headers()["content-type"], "application/problem+json");
/// assert_eq!(response.headers()["retry-after"], "60");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(serialize_with = "serialize_status")]
    status: StatusCode,
    /// The status's reason phrase, named from the status when serialised rather
    /// than kept beside it.
    #[serde(rename = "title", serialize_with = "serialize_title")]
    title_of: StatusCode,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    op: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pointer: Option<String>,
    /// A machine-readable name of the problem, for problems a client handles on
    /// its own (an extension member, in RFC 9457's terms).
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    /// Headers the response carries besides its content type: `retry-after`,
    /// `allow`, `connection: close`.
    #[serde(skip)]
    headers: Vec<(HeaderName, HeaderValue)>,
}

fn serialize_status<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

fn serialize_title<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(title(*status))
}

fn title(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

impl Problem {
    /// A problem answered with `status`, explained by `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            title_of: status,
            detail: detail.into(),
            op: None,
            pointer: None,
            code: None,
            headers: Vec::new(),
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
    pub(crate) fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the batch body is larger than the limit of {limit} bytes"),
        )
    }

    /// 400 for a batch body that could not be read (the connection failed mid-body).
    pub(crate) fn unreadable_body() -> Self {
        Self::bad_request("the batch body could not be read")
    }

    /// 405 for a request to the batch endpoint that is neither a `POST` nor an
    /// `OPTIONS` asking what it can do.
    pub(crate) fn method_not_allowed() -> Self {
        let mut problem = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "the batch endpoint takes POST requests, and OPTIONS to tell its limits",
        );
        problem
            .headers
            .push((header::ALLOW, HeaderValue::from_static(ALLOW)));
        problem
    }

    /// Marks the problem as answered before the request body was read to its end:
    /// the response says `connection: close`, so a client does not send its next
    /// request into a connection the server is closing. (HTTP/2 servers drop the
    /// header; there a stream ends on its own.)
    pub(crate) fn closing_connection(mut self) -> Self {
        self.headers
            .push((header::CONNECTION, HeaderValue::from_static("close")));
        self
    }

    /// Names the problem for clients that handle it on their own (`code`).
    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// Tells the client it may try again after `seconds` (`retry-after`).
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.headers
            .push((header::RETRY_AFTER, HeaderValue::from(seconds)));
        self
    }

    /// Locates the fault at operation `index` (its position in the batch).
    pub fn at_op(mut self, index: usize) -> Self {
        self.op = Some(index);
        self
    }

    /// Locates the fault at a JSON `pointer` (RFC 6901) into the request document.
    pub fn at_pointer(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
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
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
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
            title(self.status),
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
