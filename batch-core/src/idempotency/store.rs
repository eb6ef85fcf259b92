//! Where keyed batches and their answers are kept: the [`IdempotencyStore`] trait
//! and what it holds.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use thiserror::Error;

use super::key::{Fingerprint, StoreKey};
use crate::executor::BoxError;

/// What a store's methods return: a boxed future, so that stores can sit behind
/// `dyn IdempotencyStore`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Keeps, per caller and key, the batch that runs under that key and then its answer.
///
/// The endpoint calls [`claim`](Self::claim) once the batch is read; a store must
/// make that atomic (at most one caller of `claim` for a key gets `None` until the
/// key is released or expires), across every replica that shares it: that is the
/// whole guarantee. [`MemoryStore`](super::MemoryStore) is the default;
/// `batch_redis::RedisStore` shares keys between replicas.
///
/// A store never sees a caller's key or credentials, only [`StoreKey`], a hash of
/// both.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Takes `key` for a batch whose request has `fingerprint`, for `ttl`, and
    /// returns `None`; or, when the key is already held, leaves it as it is and
    /// returns what it holds.
    fn claim<'a>(
        &'a self,
        key: &'a StoreKey,
        entry: &'a Entry,
        ttl: Duration,
    ) -> StoreFuture<'a, Option<Entry>>;

    /// Replaces the claim on `key` by the batch's answer, kept for `ttl`.
    fn answer<'a>(
        &'a self,
        key: &'a StoreKey,
        answer: &'a Entry,
        ttl: Duration,
    ) -> StoreFuture<'a, ()>;

    /// Gives up the claim on `key`: the batch was refused and ran nothing, so the
    /// same key may run it again.
    fn release<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()>;
}

/// Why a store could not do what was asked: the keyed batch is refused with 503
/// and `retry-after` rather than run without protection.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached (Redis down, say).
    #[error("the idempotency store is unavailable: {0}")]
    Unavailable(BoxError),
    /// The store is full of batches still running; nothing can be evicted.
    #[error("the idempotency store is full")]
    Full,
    /// The store holds something that is not an [`Entry`].
    #[error("the idempotency store holds an unreadable entry: {0}")]
    Corrupt(&'static str),
}

/// What a store holds for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A batch runs under the key.
    Running {
        /// The request's fingerprint.
        fingerprint: Fingerprint,
        /// When it started, in milliseconds since the Unix epoch: a batch older than
        /// its deadline no longer runs, it was interrupted.
        started_ms: u64,
    },
    /// The batch ran; its answer.
    Answered(StoredAnswer),
}

/// A batch's complete answer, as sent: status, headers and every byte of the body.
///
/// Whatever the format (a JSON document, `multipart/mixed`, a stream), the answer
/// is stored whole with its content type, and replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The fingerprint of the request that got it.
    pub fingerprint: Fingerprint,
    /// The answer's status.
    pub status: StatusCode,
    /// The answer's headers.
    pub headers: HeaderMap,
    /// The answer's body.
    pub body: Bytes,
}

impl Entry {
    /// The fingerprint of the request the entry is for.
    pub fn fingerprint(&self) -> &Fingerprint {
        match self {
            Entry::Running { fingerprint, .. } => fingerprint,
            Entry::Answered(answer) => &answer.fingerprint,
        }
    }

    /// How many bytes the entry takes, roughly: what a bounded store counts.
    pub fn size(&self) -> usize {
        match self {
            Entry::Running { .. } => 64,
            Entry::Answered(answer) => {
                let headers: usize = answer
                    .headers
                    .iter()
                    .map(|(name, value)| name.as_str().len() + value.len() + 4)
                    .sum();
                64 + headers + answer.body.len()
            }
        }
    }

    /// The entry as bytes, for a store that keeps bytes (Redis):
    /// `R <fingerprint> <started_ms>` for a running batch;
    /// `A <fingerprint> <status>\r\n`, the headers as `name: value\r\n`, an empty line
    /// and the body for an answer.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Entry::Running {
                fingerprint,
                started_ms,
            } => format!("R {fingerprint} {started_ms}").into_bytes(),
            Entry::Answered(answer) => {
                let mut bytes =
                    format!("A {} {}\r\n", answer.fingerprint, answer.status.as_u16()).into_bytes();
                for (name, value) in &answer.headers {
                    bytes.extend_from_slice(name.as_str().as_bytes());
                    bytes.extend_from_slice(b": ");
                    bytes.extend_from_slice(value.as_bytes());
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b"\r\n");
                bytes.extend_from_slice(&answer.body);
                bytes
            }
        }
    }

    /// Reads an entry written by [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        match bytes.split_first() {
            Some((b'R', rest)) => {
                let text = std::str::from_utf8(rest).map_err(|_| StoreError::Corrupt("marker"))?;
                let mut fields = text.split_ascii_whitespace();
                let fingerprint = fields
                    .next()
                    .and_then(Fingerprint::from_hex)
                    .ok_or(StoreError::Corrupt("fingerprint"))?;
                let started_ms = fields
                    .next()
                    .and_then(|ms| ms.parse().ok())
                    .ok_or(StoreError::Corrupt("start time"))?;
                Ok(Entry::Running {
                    fingerprint,
                    started_ms,
                })
            }
            Some((b'A', rest)) => read_answer(rest).map(Entry::Answered),
            _ => Err(StoreError::Corrupt("kind")),
        }
    }
}

/// ` <fingerprint> <status>\r\n` headers `\r\n` body.
fn read_answer(bytes: &[u8]) -> Result<StoredAnswer, StoreError> {
    let mut lines = Lines { rest: bytes };
    let first = lines.next().ok_or(StoreError::Corrupt("status line"))?;
    let first = std::str::from_utf8(first).map_err(|_| StoreError::Corrupt("status line"))?;
    let mut fields = first.split_ascii_whitespace();
    let fingerprint = fields
        .next()
        .and_then(Fingerprint::from_hex)
        .ok_or(StoreError::Corrupt("fingerprint"))?;
    let status = fields
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(StoreError::Corrupt("status"))?;
    let mut headers = HeaderMap::new();
    loop {
        let line = lines.next().ok_or(StoreError::Corrupt("headers"))?;
        if line.is_empty() {
            break;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(StoreError::Corrupt("header"))?;
        let name =
            HeaderName::from_bytes(&line[..colon]).map_err(|_| StoreError::Corrupt("header"))?;
        let value = line[colon + 1..]
            .strip_prefix(b" ")
            .unwrap_or(&line[colon + 1..]);
        let value = HeaderValue::from_bytes(value).map_err(|_| StoreError::Corrupt("header"))?;
        headers.append(name, value);
    }
    Ok(StoredAnswer {
        fingerprint,
        status,
        headers,
        body: Bytes::copy_from_slice(lines.rest),
    })
}

/// CRLF-terminated lines, leaving the rest (the body) where the reader stopped.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let end = self.rest.windows(2).position(|pair| pair == b"\r\n")?;
        let line = &self.rest[..end];
        self.rest = &self.rest[end + 2..];
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> Entry {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("multipart/mixed; boundary=b"),
        );
        headers.insert("content-length", HeaderValue::from_static("7"));
        Entry::Answered(StoredAnswer {
            fingerprint: Fingerprint::of("native", b"{}"),
            status: StatusCode::OK,
            headers,
            body: Bytes::from_static(b"\r\n\r\nx\xff\x00"),
        })
    }

    #[test]
    fn entries_survive_their_bytes() {
        let running = Entry::Running {
            fingerprint: Fingerprint::of("graph", b"[1]"),
            started_ms: 1_700_000_000_123,
        };
        for entry in [running, answer()] {
            assert_eq!(Entry::from_bytes(&entry.to_bytes()).unwrap(), entry);
        }
    }

    #[test]
    fn unreadable_bytes_are_an_error_not_a_panic() {
        let whole = answer().to_bytes();
        for end in 0..whole.len() {
            // Every prefix up to the blank line is incomplete; past it, the body is
            // only shorter.
            let _ = Entry::from_bytes(&whole[..end]);
        }
        for bad in [
            &b""[..],
            b"X",
            b"R nothex 1",
            b"R ",
            b"A zz 200\r\n\r\n",
            b"A \r\n",
        ] {
            assert!(Entry::from_bytes(bad).is_err(), "{bad:?}");
        }
    }
}
