//! What goes through Redis: stream entries, each an event with its place in the
//! order every replica shares, and the cursors clients are given for them.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::time::{SystemTime, UNIX_EPOCH};

use batch_core::{Event, EventError};
use bytes::Bytes;
use redis::Value;
use thiserror::Error;

/// How many bytes a replica id or an epoch takes: 16 hex digits.
const ID_LEN: usize = 16;

/// 64 random bits as 16 hex digits: the id of a replica, or of a run of the history.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplicaId([u8; ID_LEN]);

impl ReplicaId {
    /// An id no other replica (or run) has, in practice: 64 random bits.
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

/// The cursor of event `seq` of the history run `epoch`: `<epoch>-<seq>`.
pub(crate) fn cursor(epoch: &str, seq: u64) -> String {
    format!("{epoch}-{seq}")
}

/// The run and position a client's cursor names, if it is one of ours.
pub(crate) fn parse_cursor(cursor: &str) -> Option<(&str, u64)> {
    let (epoch, seq) = cursor.split_once('-')?;
    let hex = epoch.len() == ID_LEN && epoch.bytes().all(|c| c.is_ascii_hexdigit());
    // Digits only: `u64::from_str` would take a `+` too.
    let digits = !seq.is_empty() && seq.bytes().all(|c| c.is_ascii_digit());
    (hex && digits).then_some(())?;
    Some((epoch, seq.parse().ok()?))
}

/// A stream entry that is not one of ours.
#[derive(Debug, Error)]
pub(crate) enum WireError {
    /// Not the shape of a stream entry, or its id is not `<seq>-0`.
    #[error("not a stream entry of the hub: {0}")]
    Shape(&'static str),
    /// Its event field is not an event.
    #[error(transparent)]
    Event(#[from] EventError),
}

/// One entry of a stream: an event, its seq, and the run of the history it
/// belongs to (only the shared stream's entries say).
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) event: Event,
    pub(crate) epoch: Option<String>,
}

/// The entries of an `XRANGE` answer (or of one stream of an `XREAD` answer).
pub(crate) fn entries(reply: Value) -> Result<Vec<Entry>, WireError> {
    match reply {
        Value::Nil => Ok(Vec::new()),
        Value::Array(entries) => entries.into_iter().map(entry).collect(),
        _ => Err(WireError::Shape("not a list of entries")),
    }
}

/// The entries of an `XREAD` answer on one stream: none when it timed out.
pub(crate) fn read(reply: Value) -> Result<Vec<Entry>, WireError> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams,
        Value::Map(streams) => streams.into_iter().map(|(_, entries)| entries).collect(),
        _ => return Err(WireError::Shape("not an XREAD answer")),
    };
    let mut all = Vec::new();
    for stream in streams {
        let entries_of = match stream {
            // RESP2: [name, entries]; RESP3 maps name to entries.
            Value::Array(mut pair) if pair.len() == 2 => pair.pop().unwrap_or_default(),
            other => other,
        };
        all.extend(entries(entries_of)?);
    }
    Ok(all)
}

fn entry(value: Value) -> Result<Entry, WireError> {
    let Value::Array(parts) = value else {
        return Err(WireError::Shape("an entry is not a list"));
    };
    let [Value::BulkString(id), Value::Array(fields)] = parts.as_slice() else {
        return Err(WireError::Shape("an entry is not [id, fields]"));
    };
    let seq = std::str::from_utf8(id)
        .ok()
        .and_then(|id| id.strip_suffix("-0"))
        .and_then(|seq| seq.parse().ok())
        .ok_or(WireError::Shape("an entry's id is not <seq>-0"))?;
    let (mut json, mut epoch) = (None, None);
    for pair in fields.chunks_exact(2) {
        if let [Value::BulkString(name), Value::BulkString(value)] = pair {
            match name.as_slice() {
                b"j" => json = Some(Bytes::copy_from_slice(value)),
                b"e" => epoch = String::from_utf8(value.clone()).ok(),
                _ => {}
            }
        }
    }
    let json = json.ok_or(WireError::Shape("an entry has no event"))?;
    Ok(Entry {
        seq,
        event: Event::from_json(json)?,
        epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use batch_core::EventKind;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn stream_entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|field| bulk(field)).collect()),
        ])
    }

    #[test]
    fn ids_are_hex_and_differ() {
        let (a, b) = (ReplicaId::random(), ReplicaId::random());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 16);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn cursors_read_back_and_others_are_refused() {
        let epoch = ReplicaId::random();
        let made = cursor(epoch.as_str(), 42);
        assert_eq!(parse_cursor(&made), Some((epoch.as_str(), 42)));
        for bad in [
            "",
            "42",
            "-42",
            "0123456789abcdef-",
            "0123456789abcdef-+4",
            "0123456789abcdef-4x",
            "0123456789abcdeg-4",
            "0123-4",
            "0123456789abcdef-99999999999999999999999",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn entries_read_back_whole_and_foreign_ones_are_refused() {
        let json = r#"{"type":"delete","uri":"/items/7"}"#;
        let reply = Value::Array(vec![
            stream_entry("7-0", &["j", json, "e", "0123456789abcdef", "t", "1"]),
            stream_entry("9-0", &["j", json]),
        ]);
        let both = entries(reply).unwrap();
        assert_eq!(both.len(), 2);
        assert_eq!(
            (both[0].seq, both[0].epoch.as_deref()),
            (7, Some("0123456789abcdef"))
        );
        assert_eq!(both[0].event.kind(), EventKind::Delete);
        assert_eq!(both[0].event.json().as_ref(), json.as_bytes());
        assert_eq!((both[1].seq, both[1].epoch.as_deref()), (9, None));

        let xread = Value::Array(vec![Value::Array(vec![
            bulk("stream"),
            Value::Array(vec![stream_entry("3-0", &["j", json])]),
        ])]);
        assert_eq!(read_seqs(xread), [3]);
        assert!(read(Value::Nil).unwrap().is_empty());

        for bad in [
            stream_entry("7-1", &["j", json]),
            stream_entry("x-0", &["j", json]),
            stream_entry("7-0", &["e", "x"]),
            stream_entry("7-0", &["j", "{\"type\":\"x\",\"uri\":\"/\"}"]),
            bulk("7-0"),
        ] {
            assert!(entries(Value::Array(vec![bad])).is_err());
        }
    }

    fn read_seqs(reply: Value) -> Vec<u64> {
        read(reply).unwrap().iter().map(|entry| entry.seq).collect()
    }
}
