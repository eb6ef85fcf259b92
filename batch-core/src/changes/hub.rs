//! Hubs: how a change made on one replica reaches the subscribers of every replica.

use std::future::Future;
use std::pin::Pin;

use super::event::Event;
use super::history::Since;
use super::subscribers::Subscribers;

/// What [`Hub::since`] returns: a boxed future, so that hubs can sit behind
/// `dyn Hub`.
pub type SinceFuture<'a> = Pin<Box<dyn Future<Output = Since> + Send + 'a>>;

/// Carries change events to subscribers: this replica's own, and, for a hub that
/// links replicas (Redis pub/sub, say), every other replica's, each exactly once.
///
/// The endpoint publishes each change it sees through its hub and registers its
/// sockets' subscriptions in the hub's [`Subscribers`]. [`LocalHub`], the default,
/// keeps events in this process.
///
/// A hub for several replicas can deliver a local event to its own subscribers at
/// once (so local events flow even when the link is down), send it to the others,
/// and deliver what the others send, skipping its own; each replica then keeps its
/// own history and cursors. One that gives every event its place in an order all
/// replicas share delivers them all, its own too, in that order with
/// [`Subscribers::deliver_at`], keeps their history, and answers
/// [`since`](Hub::since) from it, so a client resumes on any replica. The first kind:
///
/// ```
/// use batch_core::{Event, Hub, Subscribers};
/// use std::sync::mpsc::Sender;
///
/// /// Hands every local event to another part of the program as well.
/// struct Forwarding {
///     local: Subscribers,
///     outbox: std::sync::Mutex<Sender<bytes::Bytes>>,
/// }
///
/// impl Hub for Forwarding {
///     fn publish(&self, event: Event) {
///         self.local.deliver(&event);
///         let _ = self.outbox.lock().map(|outbox| outbox.send(event.json().clone()));
///     }
///
///     fn subscribers(&self) -> &Subscribers {
///         &self.local
///     }
/// }
/// ```
pub trait Hub: Send + Sync + 'static {
    /// Delivers `event`, a change this replica saw, to its subscribers on every
    /// replica, once each.
    fn publish(&self, event: Event);

    /// This replica's subscribers, to which the hub delivers every replica's events.
    fn subscribers(&self) -> &Subscribers;

    /// The events of `key` (a resource or list URI) after `cursor`, the `seq` a
    /// client resumes from (`None` when it sent no string), when the history still
    /// holds every one of them; asked after the client's subscription to `key` was
    /// added to [`subscribers`](Self::subscribers).
    ///
    /// The default answers from this replica's own history, which
    /// [`Subscribers::deliver`] keeps. A hub that stamps events itself
    /// ([`Subscribers::deliver_at`]) keeps their history and answers here; it must
    /// leave out events this replica has not delivered yet (they reach the
    /// subscription live), and answer [`Since::NotCovered`] rather than leave a gap.
    fn since<'a>(&'a self, key: &'a str, cursor: Option<&'a str>) -> SinceFuture<'a> {
        Box::pin(std::future::ready(self.subscribers().since(key, cursor)))
    }
}

/// The hub of a single replica: events go to this process's subscribers only.
#[derive(Debug, Default)]
pub struct LocalHub {
    subscribers: Subscribers,
}

impl LocalHub {
    /// A hub with no subscribers yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Hub for LocalHub {
    fn publish(&self, event: Event) {
        self.subscribers.deliver(&event);
    }

    fn subscribers(&self) -> &Subscribers {
        &self.subscribers
    }
}
