//! What goes over the Redis channel: an event, tagged with the replica that saw it.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::time::{SystemTime, UNIX_EPOCH};

use batch_core::{Event, EventError};
use bytes::Bytes;
use thiserror::Error;

/// How many bytes a replica id takes on the wire: 16 hex digits.
const ID_LEN: usize = 16;

/// Which replica published an event, so that it can skip its own.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplicaId([u8; ID_LEN]);

impl ReplicaId {
    /// An id no other replica has, in practice: 64 random bits.
    pub(crate) fn random() -> Self {
        // The standard library's hasher keys are random per process and per
        // instance; mixing in the time and the process id costs nothing.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let bits = RandomState::new().hash_one((nanos, std::process::id()));
        let mut id = [0; ID_LEN];
        for (digit, shift) in id.iter_mut().zip((0..64).step_by(4).rev()) {
            *digit = b"0123456789abcdef"[((bits >> shift) & 0xf) as usize];
        }
        Self(id)
    }

    /// The id as text: 16 lower-case hex digits.
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message on the channel that is not a tagged event.
#[derive(Debug, Error)]
pub(crate) enum WireError {
    /// No replica id and space in front.
    #[error("no replica id in front of the event")]
    Untagged,
    /// What follows the tag is not an event.
    #[error(transparent)]
    Event(#[from] EventError),
}

/// The message for `event`, published by `replica`: `<id> <event JSON>`.
pub(crate) fn encode(replica: &ReplicaId, event: &Event) -> Vec<u8> {
    let json = event.json();
    let mut payload = Vec::with_capacity(ID_LEN + 1 + json.len());
    payload.extend_from_slice(&replica.0);
    payload.push(b' ');
    payload.extend_from_slice(json);
    payload
}

/// The event of a message from the channel, or `None` when `own` published it.
pub(crate) fn decode(own: &ReplicaId, payload: &[u8]) -> Result<Option<Event>, WireError> {
    let (id, json) = payload
        .split_at_checked(ID_LEN)
        .and_then(|(id, rest)| Some((id, rest.strip_prefix(b" ")?)))
        .ok_or(WireError::Untagged)?;
    if id == own.0 {
        return Ok(None);
    }
    Ok(Some(Event::from_json(Bytes::copy_from_slice(json))?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use batch_core::EventKind;

    fn event() -> Event {
        Event::from_json(Bytes::from_static(br#"{"type":"delete","uri":"/items/7"}"#)).unwrap()
    }

    #[test]
    fn replica_ids_are_hex_and_differ() {
        let (a, b) = (ReplicaId::random(), ReplicaId::random());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 16);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn another_replicas_event_reads_back_and_our_own_is_skipped() {
        let (ours, theirs) = (ReplicaId::random(), ReplicaId::random());
        let payload = encode(&theirs, &event());
        assert_eq!(&payload[16..], br#" {"type":"delete","uri":"/items/7"}"#);
        let read = decode(&ours, &payload).unwrap().unwrap();
        assert_eq!((read.kind(), read.uri()), (EventKind::Delete, "/items/7"));
        assert_eq!(read.json(), event().json());
        assert!(decode(&theirs, &payload).unwrap().is_none());
    }

    #[test]
    fn foreign_messages_are_refused() {
        let own = ReplicaId::random();
        assert!(matches!(decode(&own, b"hello"), Err(WireError::Untagged)));
        assert!(matches!(
            decode(&own, b"0123456789abcdefX{}"),
            Err(WireError::Untagged)
        ));
        assert!(matches!(
            decode(&own, b"0123456789abcdef {\"type\":\"x\"}"),
            Err(WireError::Event(_))
        ));
    }
}
