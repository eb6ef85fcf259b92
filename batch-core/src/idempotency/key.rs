//! The `Idempotency-Key` header, the store key made of it and the caller, and the
//! fingerprint of a request.

use std::fmt;

use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};

use crate::problem::Problem;

/// The header a client names a batch with. A name, not a string: every batch looks
/// it up, and a string would be parsed as a header name at each lookup.
pub(crate) const HEADER: HeaderName = HeaderName::from_static("idempotency-key");

/// The longest key accepted, in characters.
pub(crate) const MAX_LEN: usize = 255;

/// The `Idempotency-Key` of a request: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdempotencyKey(Vec<u8>);

impl IdempotencyKey {
    /// The request's key; `None` without the header. More than one, or a key that is
    /// empty, longer than 255 characters or holds anything but visible ASCII: 400.
    pub(crate) fn of(headers: &HeaderMap) -> Result<Option<Self>, Problem> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(invalid("the request carries more than one Idempotency-Key"));
        }
        let key = value.as_bytes();
        if key.is_empty() || key.len() > MAX_LEN || !key.iter().all(u8::is_ascii_graphic) {
            return Err(invalid(
                "an Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces)",
            ));
        }
        Ok(Some(Self(key.to_vec())))
    }

    /// The key of this key in a store, for `caller` (whatever names the caller): a
    /// hash of both, so that a store holds neither the key nor a credential, and one
    /// caller's key never finds another's answer.
    pub(crate) fn for_caller(&self, caller: &[u8]) -> StoreKey {
        let mut hash = Sha256::new();
        // Lengths first: no caller and key can be cut differently into the same bytes.
        hash.update((caller.len() as u64).to_be_bytes());
        hash.update(caller);
        hash.update(&self.0);
        StoreKey(hex(&hash.finalize()))
    }
}

fn invalid(detail: &str) -> Problem {
    Problem::bad_request(detail).with_code("idempotency_key_invalid")
}

/// The name of one caller's key in a store: 64 lower-case hex digits (SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey(pub(crate) String);

impl StoreKey {
    /// The key as text, to name it in a store.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a keyed request asked for, to tell a retry from another request under the
/// same key: a SHA-256 of the batch's format and body.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a batch `body` in the format called `format`.
    pub fn of(format: &str, body: &[u8]) -> Self {
        let mut hash = Sha256::new();
        hash.update(format.as_bytes());
        hash.update([0]);
        hash.update(body);
        Self(hash.finalize().into())
    }

    /// Reads the 64 hex digits [`Display`](fmt::Display) writes.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn key(value: &[u8]) -> Result<Option<IdempotencyKey>, Problem> {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_bytes(value).unwrap());
        IdempotencyKey::of(&headers)
    }

    #[test]
    fn keys_are_1_to_255_visible_characters() {
        assert_eq!(IdempotencyKey::of(&HeaderMap::new()), Ok(None));
        assert!(
            key(b"8e03978e-40d5-43e8-bc93-6894a57f9324")
                .unwrap()
                .is_some()
        );
        assert!(key("k".repeat(255).as_bytes()).unwrap().is_some());
        for bad in [
            &b""[..],
            &[b'k'; 256],
            b"two words",
            b"caf\xc3\xa9",
            b"tab\there",
        ] {
            let problem = key(bad).unwrap_err();
            assert_eq!(problem.status(), 400, "{bad:?}");
        }
        let mut two = HeaderMap::new();
        two.append(HEADER, HeaderValue::from_static("a"));
        two.append(HEADER, HeaderValue::from_static("b"));
        assert_eq!(IdempotencyKey::of(&two).unwrap_err().status(), 400);
    }

    #[test]
    fn the_caller_is_part_of_the_store_key() {
        let k = key(b"k1").unwrap().unwrap();
        assert_eq!(k.for_caller(b"Bearer ada"), k.for_caller(b"Bearer ada"));
        assert_ne!(k.for_caller(b"Bearer ada"), k.for_caller(b"Bearer bob"));
        // The same bytes cut differently between caller and key are other keys.
        let ab = key(b"b").unwrap().unwrap().for_caller(b"a");
        let a_b = key(b"ab").unwrap().unwrap().for_caller(b"");
        assert_ne!(ab, a_b);
        assert!(!k.for_caller(b"Bearer ada").as_str().contains("ada"));
        assert_eq!(k.for_caller(b"x").as_str().len(), 64);
    }

    #[test]
    fn fingerprints_name_format_and_body() {
        let fp = Fingerprint::of("native", b"{}");
        assert_eq!(Fingerprint::from_hex(&fp.to_string()), Some(fp));
        assert_ne!(fp, Fingerprint::of("graph", b"{}"));
        assert_ne!(fp, Fingerprint::of("native", b"{ }"));
        assert_eq!(Fingerprint::from_hex("zz"), None);
        assert_eq!(Fingerprint::from_hex(&"é".repeat(32)), None);
    }
}
