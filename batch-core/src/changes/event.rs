//! A change to a resource, written once as the message every subscriber gets.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use thiserror::Error;

use crate::codec::json::Writer;
use crate::model::ResultBody;

/// What a mutation did to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A `POST` to a list path created a resource.
    Create,
    /// A `PATCH` or `PUT` changed a resource.
    Patch,
    /// A `DELETE` removed a resource.
    Delete,
}

impl EventKind {
    /// The message's `type`: `create`, `patch` or `delete`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Create => "create",
            EventKind::Patch => "patch",
            EventKind::Delete => "delete",
        }
    }
}

/// A change event: the message a subscriber of the resource (or of its list) is
/// sent, written once and shared by every subscriber.
///
/// A hub that carries events between replicas sends [`Event::json`] and reads it
/// back with [`Event::from_json`].
///
/// ```
/// use batch_core::{Event, EventKind};
///
/// let event = Event::from_json(br#"{"type":"delete","uri":"/items/7"}"#.to_vec().into())?;
/// assert_eq!(event.kind(), EventKind::Delete);
/// assert_eq!(event.uri(), "/items/7");
/// # Ok::<(), batch_core::EventError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Event(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    kind: EventKind,
    uri: String,
    json: Bytes,
    /// Its position in the order this replica delivers events; 0 before delivery.
    seq: u64,
}

/// Why bytes from another replica are not an event.
#[derive(Debug, Error)]
#[error("not a change event: {0}")]
pub struct EventError(String);

impl Event {
    /// `{"type":"create","uri":L,"resource":…}`: a resource created in the list at
    /// `list_uri` (ending in `/`), as the application answered it, and where it is.
    pub(crate) fn create(list_uri: String, resource: &ResultBody, location: Option<&str>) -> Self {
        let mut out = Self::start(EventKind::Create, &list_uri);
        out.member("resource", resource);
        if let Some(location) = location {
            out.raw(br#","location":"#);
            out.string(location);
        }
        Self::finish(EventKind::Create, list_uri, out)
    }

    /// `{"type":"patch","uri":U,"patch":…}`: the body the change was sent with.
    pub(crate) fn patch(uri: String, patch: &ResultBody) -> Self {
        let mut out = Self::start(EventKind::Patch, &uri);
        out.member("patch", patch);
        Self::finish(EventKind::Patch, uri, out)
    }

    /// `{"type":"delete","uri":U}`.
    pub(crate) fn delete(uri: String) -> Self {
        let out = Self::start(EventKind::Delete, &uri);
        Self::finish(EventKind::Delete, uri, out)
    }

    fn start(kind: EventKind, uri: &str) -> Writer {
        let mut out = Writer::new();
        out.raw(br#"{"type":"#);
        out.string(kind.name());
        out.raw(br#","uri":"#);
        out.string(uri);
        out
    }

    fn finish(kind: EventKind, uri: String, mut out: Writer) -> Self {
        out.raw(b"}");
        Self(Arc::new(Inner {
            kind,
            uri,
            json: Bytes::from(out.into_bytes()),
            seq: 0,
        }))
    }

    /// Reads an event another replica wrote with [`Event::json`].
    pub fn from_json(json: Bytes) -> Result<Self, EventError> {
        #[derive(Deserialize)]
        struct Head {
            #[serde(rename = "type")]
            kind: String,
            uri: String,
        }
        let head: Head =
            serde_json::from_slice(&json).map_err(|err| EventError(err.to_string()))?;
        // Only an object can take the `seq` member delivery adds.
        let trimmed = json.trim_ascii();
        if !(trimmed.starts_with(b"{") && trimmed.ends_with(b"}")) {
            return Err(EventError("not a JSON object".into()));
        }
        let json = json.slice_ref(trimmed);
        let kind = match head.kind.as_str() {
            "create" => EventKind::Create,
            "patch" => EventKind::Patch,
            "delete" => EventKind::Delete,
            other => return Err(EventError(format!("unknown type {other:?}"))),
        };
        Ok(Self(Arc::new(Inner {
            kind,
            uri: head.uri,
            json,
            seq: 0,
        })))
    }

    /// What happened.
    pub fn kind(&self) -> EventKind {
        self.0.kind
    }

    /// The resource's URI (a list URI, ending in `/`, for a creation).
    pub fn uri(&self) -> &str {
        &self.0.uri
    }

    /// The message subscribers are sent: `{"type": …, "uri": …, …}`.
    pub fn json(&self) -> &Bytes {
        &self.0.json
    }

    /// Its position in the order this replica delivered events (0 for an event not
    /// delivered yet); the message's `seq` member is its cursor.
    pub(crate) fn seq(&self) -> u64 {
        self.0.seq
    }

    /// The event as delivered: `"seq": cursor` added to its message, and `seq` its
    /// position in the order the hub delivers events (increasing, above 0).
    ///
    /// A hub that orders events itself (one order for every replica, say) stamps
    /// them with this before [`Subscribers::deliver_at`](super::Subscribers::deliver_at),
    /// and stamps the events it answers [`Hub::since`](super::Hub::since) with.
    pub fn with_seq(&self, seq: u64, cursor: &str) -> Self {
        let json = &self.0.json;
        let mut out = Writer::new();
        out.raw(&json[..json.len() - 1]);
        out.raw(br#","seq":"#);
        out.string(cursor);
        out.raw(b"}");
        Self(Arc::new(Inner {
            kind: self.0.kind,
            uri: self.0.uri.clone(),
            json: Bytes::from(out.into_bytes()),
            seq,
        }))
    }

    /// Its cursor, the `seq` member [`with_seq`](Self::with_seq) added, once
    /// delivered.
    pub(crate) fn cursor(&self) -> Option<&str> {
        const MEMBER: &[u8] = br#","seq":""#;
        if self.0.seq == 0 {
            return None;
        }
        // Written last, as `,"seq":"CURSOR"}`; a cursor needs no escape.
        let json = self.0.json.strip_suffix(b"\"}")?;
        let start = memchr::memmem::rfind(json, MEMBER)? + MEMBER.len();
        std::str::from_utf8(&json[start..]).ok()
    }

    /// The subscriptions it is for: its URI and the list URI above it (the same
    /// twice for an event of a list): the keys its history is kept under.
    pub fn keys(&self) -> [&str; 2] {
        let uri = self.uri();
        [uri, list_uri(uri)]
    }
}

/// The list URI of a list path: `/items` → `/items/`; `/` stays `/`.
pub(crate) fn as_list(mut path: String) -> String {
    if !path.ends_with('/') {
        path.push('/');
    }
    path
}

/// The list URI of a resource URI: everything up to and including its last `/`
/// (`/items/7` → `/items/`); a list URI is its own.
pub(crate) fn list_uri(uri: &str) -> &str {
    uri.rfind('/').map_or(uri, |at| &uri[..=at])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parsed(event: &Event) -> Value {
        serde_json::from_slice(event.json()).unwrap()
    }

    #[test]
    fn events_are_the_messages_subscribers_get() {
        let created = Event::create(
            "/items/".into(),
            &ResultBody::Json(Bytes::from_static(br#"{"id":1001}"#)),
            Some("/items/1001"),
        );
        assert_eq!(
            parsed(&created),
            json!({"type": "create", "uri": "/items/", "resource": {"id": 1001}, "location": "/items/1001"})
        );
        let patched = Event::patch(
            "/items/7".into(),
            &ResultBody::Binary(Bytes::from_static(&[0xff])),
        );
        assert_eq!(
            parsed(&patched),
            json!({"type": "patch", "uri": "/items/7", "patch_base64": "/w=="})
        );
        assert_eq!(
            parsed(&Event::delete("/a\"b".into())),
            json!({"type": "delete", "uri": "/a\"b"})
        );
    }

    #[test]
    fn another_replicas_event_reads_back_whole() {
        let sent = Event::patch("/items/7".into(), &ResultBody::Text("x".into()));
        let read = Event::from_json(sent.json().clone()).unwrap();
        assert_eq!((read.kind(), read.uri()), (EventKind::Patch, "/items/7"));
        assert_eq!(read.json(), sent.json());
        assert!(Event::from_json(Bytes::from_static(b"{\"type\":\"x\",\"uri\":\"/\"}")).is_err());
        assert!(Event::from_json(Bytes::from_static(b"nope")).is_err());
    }

    #[test]
    fn posts_create_in_the_list_at_their_path() {
        assert_eq!(as_list("/items".into()), "/items/");
        assert_eq!(as_list("/items/".into()), "/items/");
        assert_eq!(as_list("/".into()), "/");
    }

    #[test]
    fn list_uris() {
        assert_eq!(list_uri("/items/7"), "/items/");
        assert_eq!(list_uri("/items/"), "/items/");
        assert_eq!(list_uri("/items"), "/");
        assert_eq!(list_uri("/"), "/");
        assert_eq!(
            Event::delete("/items/7".into()).keys(),
            ["/items/7", "/items/"]
        );
    }
}
