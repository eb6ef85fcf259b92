//! What the hub and its background tasks share: whether events from other replicas
//! arrive, and how many of this replica's events never left it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The link's state, as the hub's tasks see it.
#[derive(Debug, Default)]
pub(crate) struct Status {
    subscribed: AtomicBool,
    dropped: AtomicU64,
    /// The publishing queue was full the last time an event was offered.
    queue_full: AtomicBool,
}

impl Status {
    /// Whether the subscriber is subscribed to the channel right now.
    pub(crate) fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    /// The subscriber subscribed (`true`) or lost its connection (`false`).
    pub(crate) fn set_subscribed(&self, subscribed: bool) {
        self.subscribed.store(subscribed, Ordering::Relaxed);
    }

    /// How many events were not sent to Redis, since the hub was built.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// `count` more events were not sent to Redis.
    pub(crate) fn add_dropped(&self, count: u64) {
        self.dropped.fetch_add(count, Ordering::Relaxed);
    }

    /// An event found the publishing queue full and was dropped; `true` the first
    /// time since the queue last took one, so the fault is logged once, not per event.
    pub(crate) fn queue_overflowed(&self) -> bool {
        self.add_dropped(1);
        !self.queue_full.swap(true, Ordering::Relaxed)
    }

    /// The publishing queue took an event; `true` if it had been full before.
    pub(crate) fn queue_took(&self) -> bool {
        // A load first: the common case writes nothing to a shared cache line.
        self.queue_full.load(Ordering::Relaxed) && self.queue_full.swap(false, Ordering::Relaxed)
    }
}
