//! Instants a span of time away, for deadlines and expiries a config sets.

use std::time::Duration;

use tokio::time::Instant;

/// The instant `span` after `now`. A span past what an `Instant` can hold (a timeout
/// of `Duration::MAX`, say) is a deadline that never comes: 30 years on, as tokio's
/// own `sleep` takes it, rather than an overflow.
// Inlined: a call costs about what the addition does.
#[inline]
pub(crate) fn after(now: Instant, span: Duration) -> Instant {
    /// Far enough to never come, near enough for any clock to hold.
    const NEVER: Duration = Duration::from_secs(86_400 * 365 * 30);
    now.checked_add(span).unwrap_or_else(|| now + NEVER)
}
