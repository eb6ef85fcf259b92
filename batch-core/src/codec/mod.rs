//! Wire formats. Each codec translates one format to and from the internal model;
//! validation, limits, header policy and execution are shared and never live here.

mod json;
pub(crate) mod native;

use bytes::Bytes;
use http::{Response, header, request::Parts};

use crate::model::{BatchRequest, BatchResponse};
use crate::problem::Problem;

/// A place in an operation, for locating validation faults in the request document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Url,
    Method,
    Id,
    Headers,
    Header(String),
    DependsOn(usize),
}

/// One wire format.
pub(crate) trait Codec: Sync {
    /// The format's name, for logs.
    fn name(&self) -> &'static str;

    /// Translates a request body into the internal model, or refuses it (400/413).
    fn decode(&self, parts: &Parts, body: &Bytes) -> Result<BatchRequest, Problem>;

    /// Translates the results into the format's response.
    fn encode(&self, response: &BatchResponse) -> Response<Bytes>;

    /// Where `field` of op `op` sits in the request document, as a JSON pointer.
    fn pointer(&self, op: usize, field: &Field) -> Option<String>;
}

/// Chooses the codec for a request from its content type.
pub(crate) fn select(parts: &Parts) -> Result<&'static dyn Codec, Problem> {
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(&native::Native),
        _ => Err(Problem::new(
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "a batch must be sent as application/json, not {:?}",
                if content_type.is_empty() {
                    "(no content type)"
                } else {
                    content_type
                }
            ),
        )),
    }
}

/// Escapes one reference token of a JSON pointer (RFC 6901).
pub(crate) fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
