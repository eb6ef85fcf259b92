//! The default store: keys in this process's memory, bounded in count and bytes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::key::StoreKey;
use super::store::{Entry, IdempotencyStore, StoreError, StoreFuture};

/// An [`IdempotencyStore`] in this process's memory: the default.
///
/// It holds at most `max_entries` keys and `max_bytes` of answers; past either, the
/// oldest answers are evicted first (their keys run again if retried). Claims of
/// batches still running are never evicted: with the store full of them a keyed
/// batch is refused (503). Expired keys are dropped as new ones come. Replicas do not
/// share it: behind a load balancer use a shared store (`batch_redis::RedisStore`).
///
/// ```
/// use batch_core::{Config, MemoryStore};
///
/// let config = Config::builder()
///     .idempotency_store(MemoryStore::new(100_000, 256 * 1024 * 1024))
///     .build()?;
/// # Ok::<(), batch_core::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    max_entries: usize,
    max_bytes: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<StoreKey, Slot>,
    /// Keys by the order they were last written, oldest first: with one time to
    /// live for all, also the order they expire in.
    order: BTreeMap<u64, StoreKey>,
    next: u64,
    bytes: usize,
}

#[derive(Debug)]
struct Slot {
    entry: Entry,
    expires: Instant,
    seq: u64,
}

impl Default for MemoryStore {
    /// 10 000 keys and 64 MiB of answers.
    fn default() -> Self {
        Self::new(10_000, 64 * 1024 * 1024)
    }
}

impl MemoryStore {
    /// A store of at most `max_entries` keys and `max_bytes` of answers.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            max_entries: max_entries.max(1),
            max_bytes,
            state: Mutex::new(State::default()),
        }
    }

    /// How many keys the store holds.
    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements: a panic elsewhere leaves it usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn claim_now(
        &self,
        key: &StoreKey,
        entry: &Entry,
        ttl: Duration,
    ) -> Result<Option<Entry>, StoreError> {
        let mut state = self.state();
        let now = Instant::now();
        state.drop_expired(now);
        if let Some(slot) = state.entries.get(key) {
            return Ok(Some(slot.entry.clone()));
        }
        self.put(&mut state, key, entry.clone(), expiry(now, ttl))?;
        Ok(None)
    }

    fn answer_now(&self, key: &StoreKey, answer: &Entry, ttl: Duration) -> Result<(), StoreError> {
        let mut state = self.state();
        let claim = state
            .entries
            .get(key)
            .map(|slot| (slot.entry.clone(), slot.expires));
        state.remove(key);
        let stored = self.put(&mut state, key, answer.clone(), expiry(Instant::now(), ttl));
        if let (Err(_), Some((entry, expires))) = (&stored, claim) {
            // The claim goes back, freed room and all: its key must not run again.
            let _ = self.put(&mut state, key, entry, expires);
        }
        stored
    }

    /// Adds `entry`, evicting the oldest answers until it fits.
    fn put(
        &self,
        state: &mut State,
        key: &StoreKey,
        entry: Entry,
        expires: Instant,
    ) -> Result<(), StoreError> {
        let size = entry.size();
        if size > self.max_bytes {
            return Err(StoreError::Full);
        }
        while state.entries.len() >= self.max_entries || state.bytes + size > self.max_bytes {
            let oldest_answer = state
                .order
                .values()
                .find(|k| {
                    matches!(
                        state.entries.get(*k),
                        Some(Slot {
                            entry: Entry::Answered(_),
                            ..
                        })
                    )
                })
                .cloned();
            match oldest_answer {
                Some(oldest) => state.remove(&oldest),
                None => return Err(StoreError::Full),
            }
        }
        let seq = state.next;
        state.next += 1;
        state.bytes += size;
        state.order.insert(seq, key.clone());
        state.entries.insert(
            key.clone(),
            Slot {
                entry,
                expires,
                seq,
            },
        );
        Ok(())
    }
}

impl State {
    fn remove(&mut self, key: &StoreKey) {
        if let Some(slot) = self.entries.remove(key) {
            self.order.remove(&slot.seq);
            self.bytes -= slot.entry.size();
        }
    }

    /// Drops the keys expired by `now`, oldest first, stopping at the first live one.
    fn drop_expired(&mut self, now: Instant) {
        while let Some((&seq, key)) = self.order.first_key_value() {
            if self.entries.get(key).is_some_and(|slot| slot.expires > now) {
                break;
            }
            let key = key.clone();
            self.order.remove(&seq);
            if let Some(slot) = self.entries.remove(&key) {
                self.bytes -= slot.entry.size();
            }
        }
    }
}

impl IdempotencyStore for MemoryStore {
    fn claim<'a>(
        &'a self,
        key: &'a StoreKey,
        entry: &'a Entry,
        ttl: Duration,
    ) -> StoreFuture<'a, Option<Entry>> {
        let held = self.claim_now(key, entry, ttl);
        Box::pin(async move { held })
    }

    fn answer<'a>(
        &'a self,
        key: &'a StoreKey,
        answer: &'a Entry,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        let stored = self.answer_now(key, answer, ttl);
        Box::pin(async move { stored })
    }

    fn release<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        self.state().remove(key);
        Box::pin(async { Ok(()) })
    }
}

/// When an entry kept for `ttl` from `now` expires: a ttl past what the clock holds
/// (`Duration::MAX`) is an expiry that never comes, not an overflow.
fn expiry(now: Instant, ttl: Duration) -> Instant {
    crate::deadline::after(now.into(), ttl).into_std()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::key::Fingerprint;
    use crate::idempotency::store::StoredAnswer;
    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};

    const DAY: Duration = Duration::from_secs(86_400);

    fn key(n: u8) -> StoreKey {
        StoreKey(format!("{n:064x}"))
    }

    fn running() -> Entry {
        Entry::Running {
            fingerprint: Fingerprint::of("native", b"{}"),
            started_ms: 1,
        }
    }

    fn answer(body: usize) -> Entry {
        Entry::Answered(StoredAnswer {
            fingerprint: Fingerprint::of("native", b"{}"),
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from(vec![b'x'; body]),
        })
    }

    fn claim(store: &MemoryStore, n: u8) -> Option<Entry> {
        store.claim_now(&key(n), &running(), DAY).unwrap()
    }

    #[test]
    fn a_key_is_claimed_once_then_answered() {
        let store = MemoryStore::default();
        assert_eq!(claim(&store, 1), None);
        assert_eq!(claim(&store, 1), Some(running()));
        store.answer_now(&key(1), &answer(3), DAY).unwrap();
        assert_eq!(claim(&store, 1), Some(answer(3)));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn the_oldest_answers_are_evicted_first_and_claims_never() {
        let store = MemoryStore::new(3, 1 << 20);
        assert_eq!(claim(&store, 1), None); // stays running
        for n in 2..=3 {
            assert_eq!(claim(&store, n), None);
            store.answer_now(&key(n), &answer(1), DAY).unwrap();
        }
        assert_eq!(claim(&store, 4), None, "2, the oldest answer, makes room");
        assert_eq!(
            claim(&store, 2),
            None,
            "2 was evicted: claimed anew (3 goes)"
        );
        assert_eq!(claim(&store, 1), Some(running()));
        // Now 1, 4 and 2 are all running: nothing can go.
        assert!(matches!(
            store.claim_now(&key(5), &running(), DAY),
            Err(StoreError::Full)
        ));
    }

    #[test]
    fn bytes_are_bounded_too() {
        let store = MemoryStore::new(100, 1000);
        for n in 1..=3 {
            assert_eq!(claim(&store, n), None);
            store.answer_now(&key(n), &answer(400), DAY).unwrap();
        }
        assert_eq!(store.len(), 2, "the third answer evicted the first");
        assert_eq!(claim(&store, 1), None);
        assert!(store.state().bytes <= 1000);
        assert_eq!(claim(&store, 9), None);
        assert!(matches!(
            store.answer_now(&key(9), &answer(2000), DAY),
            Err(StoreError::Full)
        ));
        assert_eq!(
            claim(&store, 9),
            Some(running()),
            "too large: the claim stays"
        );
    }

    #[test]
    fn expired_keys_are_dropped() {
        let store = MemoryStore::default();
        store
            .claim_now(&key(1), &running(), Duration::ZERO)
            .unwrap();
        assert_eq!(claim(&store, 1), None, "the expired claim is gone");
        assert_eq!(store.len(), 1);
    }
}
