//! This replica's subscribers: who is told of a change to which resource.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::event::Event;
use super::history::{History, Retention, Since};

/// Something a change event can be handed to: one socket's subscriptions.
pub(crate) trait Subscriber: Send + Sync {
    /// Takes `event`, for one of the keys this subscriber was added under.
    fn deliver(&self, event: &Event);
}

/// The subscribers of one replica, by the resource path each subscribed to.
///
/// A [`Hub`](super::Hub) delivers every event, local or from another replica, to its
/// subscribers here; each is told once, even when it subscribed to both the resource
/// and its list.
#[derive(Clone, Default)]
pub struct Subscribers {
    inner: Arc<Registry>,
}

/// Subscribers by the resource path they subscribed to, each by its id.
type ByKey = HashMap<String, HashMap<u64, Arc<dyn Subscriber>>>;

#[derive(Default)]
struct Registry {
    by_key: Mutex<ByKey>,
    /// Taken inside `by_key`'s lock when delivering, so that seqs follow delivery
    /// order.
    history: Mutex<History>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Subscribers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscribers")
            .field("resources", &self.lock().len())
            .finish()
    }
}

impl Subscribers {
    /// No subscribers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hands `event` to every subscriber of its resource or of the list above it,
    /// once each, in the order events are delivered, and keeps it in this replica's
    /// history (with its `seq`) for clients that resume.
    pub fn deliver(&self, event: &Event) {
        let by_key = self.lock();
        let event = self.history().record(event, std::time::Instant::now());
        Self::hand_out(&by_key, &event);
    }

    /// Hands `event` to every subscriber of its resource or of the list above it,
    /// stamped with `seq` and `cursor` (see [`Event::with_seq`]), without keeping it
    /// here: for a hub that orders events itself and keeps their history (to answer
    /// [`Hub::since`](super::Hub::since)). Later states carry `cursor`.
    pub fn deliver_at(&self, event: &Event, seq: u64, cursor: &str) {
        let by_key = self.lock();
        let event = event.with_seq(seq, cursor);
        self.history().follow(cursor);
        Self::hand_out(&by_key, &event);
    }

    /// States read from now on carry `cursor`, until the next event: for a hub that
    /// orders events itself, where its order stands when it starts delivering.
    pub fn set_cursor(&self, cursor: &str) {
        let _by_key = self.lock();
        self.history().follow(cursor);
    }

    fn hand_out(by_key: &ByKey, event: &Event) {
        let [uri, list] = event.keys();
        let of_resource = by_key.get(uri);
        if let Some(subscribers) = of_resource {
            for subscriber in subscribers.values() {
                subscriber.deliver(event);
            }
        }
        if list == uri {
            return;
        }
        if let Some(subscribers) = by_key.get(list) {
            for (id, subscriber) in subscribers {
                if !of_resource.is_some_and(|told| told.contains_key(id)) {
                    subscriber.deliver(event);
                }
            }
        }
    }

    /// Keeps history per URI as `retention` says from now on.
    pub(crate) fn retain(&self, retention: Retention) {
        self.history().retain(retention);
    }

    /// How much history per URI the endpoint's settings ask for.
    pub fn retention(&self) -> Retention {
        self.history().retention()
    }

    /// The cursor of the last event delivered: a subscription made before reading
    /// it is told of every later event.
    pub fn cursor(&self) -> String {
        self.history().cursor()
    }

    /// The events of `key` delivered after `cursor`, if all are still kept.
    pub(crate) fn since(&self, key: &str, cursor: Option<&str>) -> Since {
        self.history().since(key, cursor)
    }

    fn history(&self) -> MutexGuard<'_, History> {
        self.inner
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// An id no subscriber of this replica has had.
    pub(crate) fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Tells subscriber `id` of every change to `key` from now on.
    pub(crate) fn add(&self, key: &str, id: u64, subscriber: Arc<dyn Subscriber>) {
        self.lock()
            .entry(key.to_owned())
            .or_default()
            .insert(id, subscriber);
    }

    /// Stops telling subscriber `id` of changes to `key`.
    pub(crate) fn remove(&self, key: &str, id: u64) {
        let mut by_key = self.lock();
        if let Some(subscribers) = by_key.get_mut(key) {
            subscribers.remove(&id);
            if subscribers.is_empty() {
                by_key.remove(key);
            }
        }
    }

    /// How many subscriptions there are, all resources together.
    pub fn count(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    fn lock(&self) -> MutexGuard<'_, ByKey> {
        // A panic elsewhere while holding the lock leaves a map that is still whole.
        self.inner
            .by_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResultBody;

    #[derive(Default)]
    struct Inbox(Mutex<Vec<String>>);

    impl Subscriber for Inbox {
        fn deliver(&self, event: &Event) {
            self.0.lock().unwrap().push(event.uri().to_owned());
        }
    }

    #[derive(Default)]
    struct Messages(Mutex<Vec<serde_json::Value>>);

    impl Subscriber for Messages {
        fn deliver(&self, event: &Event) {
            let message = serde_json::from_slice(event.json()).unwrap();
            self.0.lock().unwrap().push(message);
        }
    }

    #[test]
    fn a_hub_that_orders_events_itself_sets_their_seq_and_the_cursor() {
        let subscribers = Subscribers::new();
        let inbox = Arc::new(Messages::default());
        subscribers.add("/items/", 1, inbox.clone());
        subscribers.set_cursor("run-4");
        assert_eq!(subscribers.cursor(), "run-4");
        subscribers.deliver_at(&Event::delete("/items/7".into()), 5, "run-5");
        assert_eq!(subscribers.cursor(), "run-5");
        assert_eq!(
            inbox.0.lock().unwrap()[0],
            serde_json::json!({"type": "delete", "uri": "/items/7", "seq": "run-5"})
        );
        // Kept by the hub, not here.
        assert!(matches!(
            subscribers.since("/items/", Some("run-4")),
            Since::NotCovered
        ));
        // An event stamped here (Redis unreachable, say) moves the cursor to ours.
        subscribers.deliver(&Event::delete("/items/8".into()));
        assert_ne!(subscribers.cursor(), "run-5");
        assert_eq!(inbox.0.lock().unwrap().len(), 2);
    }

    #[test]
    fn each_subscriber_is_told_once_of_its_resource_or_list() {
        let subscribers = Subscribers::new();
        let (both, item, list, other) = (
            Arc::new(Inbox::default()),
            Arc::new(Inbox::default()),
            Arc::new(Inbox::default()),
            Arc::new(Inbox::default()),
        );
        subscribers.add("/items/7", 1, both.clone());
        subscribers.add("/items/", 1, both.clone());
        subscribers.add("/items/7", 2, item.clone());
        subscribers.add("/items/", 3, list.clone());
        subscribers.add("/items/8", 4, other.clone());
        subscribers.deliver(&Event::delete("/items/7".into()));
        subscribers.deliver(&Event::create("/items/".into(), &ResultBody::Empty, None));
        assert_eq!(*both.0.lock().unwrap(), ["/items/7", "/items/"]);
        assert_eq!(*item.0.lock().unwrap(), ["/items/7"]);
        assert_eq!(*list.0.lock().unwrap(), ["/items/7", "/items/"]);
        assert!(other.0.lock().unwrap().is_empty());
        subscribers.remove("/items/7", 2);
        subscribers.remove("/items/", 3);
        assert_eq!(subscribers.count(), 3);
        subscribers.deliver(&Event::delete("/items/7".into()));
        assert_eq!(item.0.lock().unwrap().len(), 1);
    }
}
