//! Watching a direct request for the change it makes: what an adapter sees stream
//! past (the request's body, the answer's head and body) is kept, and the event is
//! published once the answer ends.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};

use super::event::{Event, EventKind, as_list};
use super::hub::Hub;
use crate::model::ResultBody;

/// A request that reached the application directly (not as an op) and may change
/// a resource subscribers watch. An adapter hands it what passes through it; the
/// change event goes out when the answer ends, if the application answered 2xx.
///
/// A watch dropped after a 2xx head publishes too: servers stop polling a body
/// whose declared length is written (hyper, actix-web), or whose client went away,
/// and the change was made all the same.
///
/// Bodies are kept up to the endpoint's [`max_body`](crate::Config::max_body): an
/// event about a larger one goes out without it (`null`), never not at all.
///
/// ```
/// use batch_core::{BatchEndpoint, Config, SocketConfig};
/// use http::{HeaderMap, Request, StatusCode};
///
/// let config = Config::builder().sockets(SocketConfig::default()).build()?;
/// let endpoint = BatchEndpoint::new(config);
/// let (parts, ()) = Request::delete("/items/7").body(())?.into_parts();
/// let watch = endpoint.watch(&parts).expect("a DELETE may change a resource");
/// watch.response_head(StatusCode::NO_CONTENT, &HeaderMap::new());
/// watch.response_end(); // publishes {"type": "delete", "uri": "/items/7"}
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Watch {
    hub: Arc<dyn Hub>,
    kind: EventKind,
    path: String,
    content_type: Option<HeaderValue>,
    limit: usize,
    seen: Mutex<Seen>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("kind", &self.kind)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Seen {
    request: Kept,
    response: Kept,
    head: Option<(StatusCode, Option<HeaderValue>, Option<HeaderValue>)>,
    published: bool,
}

/// A body as far as it is kept: its bytes, or that it outgrew the limit.
#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    too_large: bool,
}

impl Kept {
    fn add(&mut self, data: &[u8], limit: usize) {
        if self.too_large {
            return;
        }
        if self.bytes.len() + data.len() > limit {
            self.too_large = true;
            self.bytes = Vec::new();
        } else {
            self.bytes.extend_from_slice(data);
        }
    }

    fn body(&mut self, content_type: Option<&HeaderValue>) -> ResultBody {
        if self.too_large {
            return ResultBody::Empty;
        }
        let mut headers = HeaderMap::new();
        if let Some(content_type) = content_type {
            headers.insert(header::CONTENT_TYPE, content_type.clone());
        }
        ResultBody::classify(&headers, Bytes::from(std::mem::take(&mut self.bytes)))
    }
}

impl Watch {
    /// Watches the request `parts` describes, if it may make a change: a `POST`,
    /// `PATCH`, `PUT` or `DELETE`.
    pub(crate) fn of(parts: &Parts, hub: Arc<dyn Hub>, limit: usize) -> Option<Self> {
        let kind = match parts.method {
            Method::POST => EventKind::Create,
            Method::PATCH | Method::PUT => EventKind::Patch,
            Method::DELETE => EventKind::Delete,
            _ => return None,
        };
        Some(Self {
            hub,
            kind,
            path: crate::target::normalize_path(parts.uri.path()).into_owned(),
            content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
            limit,
            seen: Mutex::new(Seen::default()),
        })
    }

    /// Keeps a piece of the request's body, as the application reads it.
    pub fn request_data(&self, data: &[u8]) {
        if self.kind == EventKind::Patch {
            self.lock().request.add(data, self.limit);
        }
    }

    /// Keeps the answer's status and what the event needs of its headers.
    pub fn response_head(&self, status: StatusCode, headers: &HeaderMap) {
        self.lock().head = Some((
            status,
            headers.get(header::CONTENT_TYPE).cloned(),
            headers.get(header::LOCATION).cloned(),
        ));
    }

    /// Whether the event needs the answer's body (a creation's is its resource): if
    /// not, [`response_end`](Self::response_end) may follow the head at once.
    pub fn needs_response_body(&self) -> bool {
        self.kind == EventKind::Create
    }

    /// Keeps a piece of the answer's body, as it is written.
    pub fn response_data(&self, data: &[u8]) {
        if self.kind == EventKind::Create {
            self.lock().response.add(data, self.limit);
        }
    }

    /// The answer ended: publishes the change if the application answered 2xx.
    /// Only the first call publishes.
    pub fn response_end(&self) {
        let event = {
            let mut seen = self.lock();
            let Some((status, content_type, location)) = seen.head.clone() else {
                return;
            };
            if seen.published || !status.is_success() {
                return;
            }
            seen.published = true;
            match self.kind {
                EventKind::Create => {
                    let resource = seen.response.body(content_type.as_ref());
                    let location = location.as_ref().and_then(|l| l.to_str().ok());
                    Event::create(as_list(self.path.clone()), &resource, location)
                }
                EventKind::Patch => {
                    let patch = seen.request.body(self.content_type.as_ref());
                    Event::patch(self.path.clone(), &patch)
                }
                EventKind::Delete => Event::delete(self.path.clone()),
            }
        };
        self.hub.publish(event);
    }

    fn lock(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A server may stop polling an answer's body once it has written its declared
/// length, and drop it unpolled to its end: the answer is whole all the same, and
/// the change is published when the watch goes.
impl Drop for Watch {
    fn drop(&mut self) {
        self.response_end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::subscribers::Subscribers;
    use serde_json::{Value, json};

    /// A hub that remembers what it was given.
    #[derive(Default)]
    struct Recorder {
        subscribers: Subscribers,
        published: Mutex<Vec<Value>>,
    }

    impl Hub for Recorder {
        fn publish(&self, event: Event) {
            let json = serde_json::from_slice(event.json()).unwrap();
            self.published.lock().unwrap().push(json);
        }

        fn subscribers(&self) -> &Subscribers {
            &self.subscribers
        }
    }

    fn watch(method: &str, uri: &str, limit: usize) -> (Arc<Recorder>, Watch) {
        let hub = Arc::new(Recorder::default());
        let (parts, ()) = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(())
            .unwrap()
            .into_parts();
        (hub.clone(), Watch::of(&parts, hub, limit).unwrap())
    }

    fn json_head() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::LOCATION, HeaderValue::from_static("/items/9"));
        headers
    }

    #[test]
    fn what_streams_past_makes_the_event_once() {
        let (hub, patch) = watch("PATCH", "/items/7?x=1", 100);
        patch.request_data(br#"{"name":"#);
        patch.request_data(br#""ink"}"#);
        patch.response_head(StatusCode::OK, &json_head());
        patch.response_data(b"{}");
        patch.response_end();
        patch.response_end();
        let (hub2, create) = watch("POST", "/items", 100);
        create.response_head(StatusCode::CREATED, &json_head());
        create.response_data(br#"{"id":9}"#);
        create.response_end();
        assert_eq!(
            *hub.published.lock().unwrap(),
            [json!({"type": "patch", "uri": "/items/7", "patch": {"name": "ink"}})]
        );
        assert_eq!(
            *hub2.published.lock().unwrap(),
            [
                json!({"type": "create", "uri": "/items/", "resource": {"id": 9}, "location": "/items/9"})
            ]
        );
    }

    #[test]
    fn refused_or_unanswered_mutations_publish_nothing_and_big_bodies_are_left_out() {
        let (hub, refused) = watch("DELETE", "/items/7", 100);
        refused.response_head(StatusCode::NOT_FOUND, &HeaderMap::new());
        refused.response_end();
        let (_, unanswered) = watch("DELETE", "/items/7", 100);
        unanswered.response_end();
        assert!(hub.published.lock().unwrap().is_empty());
        let (hub, big) = watch("PATCH", "/items/7", 4);
        big.request_data(b"{\"a\":1}");
        big.response_head(StatusCode::OK, &HeaderMap::new());
        big.response_end();
        assert_eq!(
            *hub.published.lock().unwrap(),
            [json!({"type": "patch", "uri": "/items/7", "patch": null})]
        );
        let (parts, ()) = http::Request::get("/items").body(()).unwrap().into_parts();
        assert!(Watch::of(&parts, hub, 4).is_none(), "a GET changes nothing");
    }

    #[test]
    fn a_watch_dropped_after_its_head_publishes_once() {
        let (hub, created) = watch("POST", "/items", 100);
        created.response_head(StatusCode::CREATED, &json_head());
        created.response_data(br#"{"id":9}"#);
        // The server wrote the declared length and dropped the body unpolled.
        drop(created);
        assert_eq!(
            *hub.published.lock().unwrap(),
            [
                json!({"type": "create", "uri": "/items/", "resource": {"id": 9}, "location": "/items/9"})
            ]
        );
        let (hub, ended) = watch("DELETE", "/items/7", 100);
        ended.response_head(StatusCode::NO_CONTENT, &HeaderMap::new());
        ended.response_end();
        drop(ended);
        assert_eq!(
            hub.published.lock().unwrap().len(),
            1,
            "ended, then dropped"
        );
    }
}
