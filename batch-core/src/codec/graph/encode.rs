//! Writing the Graph / OData JSON answer, `{"responses": [...]}`.

use bytes::Bytes;
use http::{Response, StatusCode};

use crate::codec::json::{RESPONSES, Writer};
use crate::model::{BatchResponse, ResultBody};

/// `{"responses": [...]}`, each `{"id", "status", "headers", "body"}`: headers in
/// canonical case, JSON bodies embedded, any other body in base64, and no body on a
/// 204 or 304 (the Graph SDK refuses one there).
pub(crate) fn encode(response: &BatchResponse) -> Response<Bytes> {
    Writer::results(RESPONSES, &response.results, |out, result| {
        out.headers(result.headers, true);
        if [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED].contains(&result.status) {
            return;
        }
        match result.body {
            ResultBody::Empty => {}
            ResultBody::Json(json) => {
                out.raw(br#","body":"#);
                out.raw(json);
            }
            body @ (ResultBody::Text(_) | ResultBody::Binary(_)) => {
                out.raw(br#","body":"#);
                out.base64(body.as_bytes());
            }
        }
    })
    .into_response()
}
