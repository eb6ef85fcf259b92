//! Change events: every 2xx mutation the application answers, whichever way it
//! arrived (a socket message, an op of a batch in any format, a plain request),
//! becomes one event for the subscribers of the resource and of its list.
//!
//! | request answered 2xx | event | `uri` |
//! |---|---|---|
//! | `POST /items` | `create`, with the answer's body and `location` | `/items/` |
//! | `PATCH` or `PUT /items/7` | `patch`, with the request's body | `/items/7` |
//! | `DELETE /items/7` | `delete` | `/items/7` |

mod event;
mod history;
mod hub;
mod subscribers;
mod watch;

use event::as_list;
pub use event::{Event, EventError, EventKind};
pub use history::{Retention, Since};
pub use hub::{Hub, LocalHub, SinceFuture};
pub use subscribers::Subscribers;
pub use watch::Watch;

pub(crate) use subscribers::Subscriber;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};

use crate::model::ResultBody;

/// A request that changes a resource when it succeeds: what its event is made of.
#[derive(Debug)]
pub(crate) struct Mutation {
    kind: EventKind,
    /// The request's path, without its query, normalized as subscriptions are.
    path: String,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

impl Mutation {
    /// The mutation `request` makes if it succeeds: a `POST`, `PATCH`, `PUT` or
    /// `DELETE`. Takes a view of the body, not a copy.
    pub(crate) fn of(request: &Request<Bytes>) -> Option<Self> {
        let kind = match *request.method() {
            Method::POST => EventKind::Create,
            Method::PATCH | Method::PUT => EventKind::Patch,
            Method::DELETE => EventKind::Delete,
            _ => return None,
        };
        Some(Self {
            kind,
            path: crate::target::normalize_path(request.uri().path()).into_owned(),
            content_type: request.headers().get(header::CONTENT_TYPE).cloned(),
            body: request.body().clone(),
        })
    }

    /// The event of the mutation, answered with `status`, `headers` and `body`: none
    /// unless the application answered 2xx.
    pub(crate) fn event(
        self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &ResultBody,
    ) -> Option<Event> {
        if !status.is_success() {
            return None;
        }
        Some(match self.kind {
            EventKind::Create => {
                let location = headers
                    .get(header::LOCATION)
                    .and_then(|value| value.to_str().ok());
                Event::create(as_list(self.path), body, location)
            }
            EventKind::Patch => {
                let mut sent = HeaderMap::new();
                if let Some(content_type) = self.content_type {
                    sent.insert(header::CONTENT_TYPE, content_type);
                }
                Event::patch(self.path, &ResultBody::classify(&sent, self.body))
            }
            EventKind::Delete => Event::delete(self.path),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn request(method: &str, uri: &str, body: &'static str) -> Request<Bytes> {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Bytes::from_static(body.as_bytes()))
            .unwrap()
    }

    fn answered(request: &Request<Bytes>, status: u16, body: &'static str) -> Option<Value> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::LOCATION, HeaderValue::from_static("/items/1001"));
        let body = ResultBody::classify(&headers, Bytes::from_static(body.as_bytes()));
        let status = StatusCode::from_u16(status).unwrap();
        Mutation::of(request)?
            .event(status, &headers, &body)
            .map(|event| serde_json::from_slice(event.json()).unwrap())
    }

    #[test]
    fn successful_mutations_are_events_and_others_are_not() {
        let create = request("POST", "/items?x=1", r#"{"name":"pen"}"#);
        assert_eq!(
            answered(&create, 201, r#"{"id":1001,"name":"pen"}"#),
            Some(
                json!({"type": "create", "uri": "/items/", "resource": {"id": 1001, "name": "pen"}, "location": "/items/1001"})
            )
        );
        let patch = request("PATCH", "/items/7", r#"{"name": "ink"}"#);
        assert_eq!(
            answered(&patch, 200, r#"{"id":7,"name":"ink"}"#),
            Some(json!({"type": "patch", "uri": "/items/7", "patch": {"name": "ink"}})),
            "a patch carries the body sent, not the answer"
        );
        assert_eq!(
            answered(&request("PUT", "/items/7", "{}"), 204, ""),
            Some(json!({"type": "patch", "uri": "/items/7", "patch": {}}))
        );
        assert_eq!(
            answered(&request("DELETE", "/items/7", ""), 204, ""),
            Some(json!({"type": "delete", "uri": "/items/7"}))
        );
        assert_eq!(
            answered(&request("DELETE", "/items/7", ""), 404, "{}"),
            None
        );
        assert_eq!(answered(&request("POST", "/items", "{}"), 422, "{}"), None);
        assert_eq!(answered(&request("GET", "/items/7", ""), 200, "{}"), None);
        assert_eq!(answered(&request("HEAD", "/items/7", ""), 200, ""), None);
    }
}
