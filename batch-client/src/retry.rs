//! When and how soon to send again what the server asked to have sent later.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, header};

/// How ops answered 429 or 503, and batches refused so, are sent again.
///
/// An op answered 429 (Too Many Requests) or 503 (Service Unavailable) is sent
/// again, in a batch of its own with the others that were, after the longest
/// `retry-after` among them, or after an exponential back-off with jitter when
/// they gave none. Only ops with an idempotent method (`GET`, `HEAD`, `OPTIONS`,
/// `PUT`, `DELETE`, `TRACE`) are retried, unless [`retry_unsafe`](Self::retry_unsafe)
/// says otherwise: a `POST` answered 429 may have done something before. Ops that
/// got 424 only because such an op failed go along with it. A whole batch refused
/// with 429 or 503 ran nothing, and is always sent again the same way.
///
/// A batch whose answer was lost (the connection failed, timed out, or the answer
/// could not be read) may have run. It is sent again, byte for byte with the same
/// `Idempotency-Key`, when the server keeps keys (it then runs at most once, and the
/// resend gets the first answer); to a server that does not, only when every op of
/// it has an idempotent method, unless [`retry_unsafe`](Self::retry_unsafe). A 409
/// `idempotency_key_in_use` (the first send still running) is waited out the same
/// way.
///
/// ```
/// use std::time::Duration;
/// use batch_client::RetryPolicy;
///
/// let policy = RetryPolicy::default().max_attempts(5).max_delay(Duration::from_secs(30));
/// assert_eq!(policy.attempts(), 5);
/// let never = RetryPolicy::none();
/// assert_eq!(never.attempts(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    unsafe_methods: bool,
}

impl Default for RetryPolicy {
    /// Up to 4 attempts, back-off from 100 ms, no wait longer than 60 s, idempotent
    /// methods only.
    fn default() -> Self {
        Self {
            attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(60),
            unsafe_methods: false,
        }
    }
}

impl RetryPolicy {
    /// Never sends anything twice.
    pub fn none() -> Self {
        Self::default().max_attempts(1)
    }

    /// Sends an op, or a batch, at most `attempts` times in all (at least once).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The first back-off when the server gave no `retry-after`; it doubles with
    /// each attempt.
    #[must_use]
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The longest wait before an attempt, whatever `retry-after` says.
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Retries ops with non-idempotent methods (`POST`, `PATCH`, ...) too: answered
    /// 429 or 503, and in batches whose answer was lost on the way from a server
    /// that keeps no idempotency keys.
    #[must_use]
    pub fn retry_unsafe(mut self, retry: bool) -> Self {
        self.unsafe_methods = retry;
        self
    }

    /// How many times at most an op or a batch is sent.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether an op with `method` (`None`: `GET`) answered `status` may be sent again.
    pub(crate) fn may_retry(&self, method: Option<&str>, status: StatusCode) -> bool {
        is_retryable(status) && (self.unsafe_methods || is_idempotent(method))
    }

    /// Whether a batch of ops with `methods` whose answer was lost may be sent again
    /// without an idempotency key: it may have run, so only when running it twice
    /// means the same as once, or when asked.
    pub(crate) fn may_resend_unkeyed<'a>(
        &self,
        mut methods: impl Iterator<Item = Option<&'a str>>,
    ) -> bool {
        self.unsafe_methods || methods.all(is_idempotent)
    }

    /// How long to wait before attempt `attempt + 1`, the answers having said
    /// `retry_after` (the longest of them) or nothing.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let delay = retry_after.unwrap_or_else(|| {
            let backoff = self
                .base_delay
                .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
            // Full jitter: clients refused together do not come back together.
            backoff.mul_f64(jitter())
        });
        delay.min(self.max_delay)
    }
}

/// 429 and 503: the server asks to be asked again later.
pub(crate) fn is_retryable(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    )
}

/// Methods that mean the same when sent twice (RFC 9110, 9.2.2).
fn is_idempotent(method: Option<&str>) -> bool {
    let Some(method) = method else {
        return true;
    };
    Method::from_bytes(method.to_ascii_uppercase().as_bytes()).is_ok_and(|m| m.is_idempotent())
}

/// `retry-after` in seconds; an HTTP date is not followed (back-off applies).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// A number in [0.5, 1): randomness enough to spread retries, from the hasher
/// keys std draws per process and per call.
fn jitter() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    let bits = hasher.finish() >> 11; // 53 bits: exactly representable
    0.5 + (bits as f64 / (1u64 << 53) as f64) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idempotent_methods_are_retried_unless_asked() {
        let policy = RetryPolicy::default();
        let busy = StatusCode::TOO_MANY_REQUESTS;
        for method in [None, Some("GET"), Some("put"), Some("DELETE"), Some("HEAD")] {
            assert!(policy.may_retry(method, busy), "{method:?}");
        }
        for method in [Some("POST"), Some("PATCH"), Some("PURGE")] {
            assert!(!policy.may_retry(method, busy), "{method:?}");
            assert!(policy.retry_unsafe(true).may_retry(method, busy));
        }
        assert!(policy.may_retry(None, StatusCode::SERVICE_UNAVAILABLE));
        assert!(!policy.may_retry(None, StatusCode::INTERNAL_SERVER_ERROR));
    }

    #[test]
    fn a_lost_batch_goes_again_without_a_key_only_when_idempotent() {
        let policy = RetryPolicy::default();
        assert!(policy.may_resend_unkeyed([None, Some("GET"), Some("delete")].into_iter()));
        let with_post = [Some("GET"), Some("POST")];
        assert!(!policy.may_resend_unkeyed(with_post.into_iter()));
        assert!(
            policy
                .retry_unsafe(true)
                .may_resend_unkeyed(with_post.into_iter())
        );
    }

    #[test]
    fn retry_after_wins_and_back_off_grows_within_bounds() {
        let policy = RetryPolicy::default()
            .base_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(2));
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(90))),
            Duration::from_secs(2)
        );
        for attempt in 1..=3 {
            let full = Duration::from_millis(100 * 2u64.pow(attempt - 1));
            let delay = policy.delay(attempt, None);
            assert!(delay >= full / 2 && delay < full, "{attempt}: {delay:?}");
        }
        assert_eq!(policy.delay(30, None), Duration::from_secs(2));
    }

    #[test]
    fn retry_after_in_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
