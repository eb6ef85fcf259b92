//! The server-wide cap on operations in flight: each batch takes places for its
//! ops before it runs, and gives them back when it ends.
//!
//! A batch that finds too few places is refused, never queued, so no one waits for
//! places: a counter does what a semaphore would, without the lock a semaphore takes
//! to give places back (to wake waiters there never are).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The places left among the ops in flight across all batches.
#[derive(Debug)]
pub(crate) struct InFlight {
    available: AtomicUsize,
}

impl InFlight {
    /// A cap of `places` ops in flight.
    pub(crate) fn new(places: usize) -> Self {
        Self {
            available: AtomicUsize::new(places),
        }
    }

    /// Takes `count` places, held until the [`Places`] are dropped; `None` if fewer
    /// are left.
    pub(crate) fn try_take(self: &Arc<Self>, count: usize) -> Option<Places> {
        self.available
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |left| {
                left.checked_sub(count)
            })
            .ok()?;
        Some(Places {
            cap: Arc::clone(self),
            count,
        })
    }
}

/// Places taken among the ops in flight, given back when dropped.
#[derive(Debug)]
pub(crate) struct Places {
    cap: Arc<InFlight>,
    count: usize,
}

impl Drop for Places {
    fn drop(&mut self) {
        self.cap.available.fetch_add(self.count, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_taken_while_held_and_given_back_when_dropped() {
        let cap = Arc::new(InFlight::new(3));
        let two = cap.try_take(2).unwrap();
        assert!(cap.try_take(2).is_none(), "only one place is left");
        let one = cap.try_take(1).unwrap();
        assert!(cap.try_take(1).is_none());
        assert!(cap.try_take(0).is_some(), "a batch of no op takes no place");
        drop(two);
        let again = cap.try_take(2).unwrap();
        drop((one, again));
        assert!(cap.try_take(3).is_some());
    }
}
