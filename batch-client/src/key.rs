//! Idempotency keys: one fresh key per batch, sent again with every resend of it.

use std::fmt::Write as _;

use http::{HeaderName, HeaderValue};

/// The header a server that keeps keys reads (see `Capabilities::idempotency`).
pub(crate) const HEADER: HeaderName = HeaderName::from_static("idempotency-key");

/// A new key: 128 random bits from the operating system, as 32 hex digits, so no
/// other caller can guess it (anonymous callers share one key space). `None` when
/// the system has no randomness to give: the batch then goes without a key, and is
/// resent only as a batch without one would be.
pub(crate) fn fresh() -> Option<HeaderValue> {
    let mut bits = [0u8; 16];
    getrandom::fill(&mut bits).ok()?;
    let mut hex = String::with_capacity(2 * bits.len());
    for byte in bits {
        let _ = write!(hex, "{byte:02x}");
    }
    HeaderValue::from_str(&hex).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_32_hex_digits_and_differ() {
        let first = fresh().unwrap();
        let second = fresh().unwrap();
        for key in [&first, &second] {
            let text = key.to_str().unwrap();
            assert_eq!(text.len(), 32);
            assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
        }
        assert_ne!(first, second);
    }
}
