//! The Redis hub and its builder.

use std::sync::Arc;
use std::time::Duration;

use batch_core::{Event, Hub, SinceFuture, Subscribers};
use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::backoff::Backoff;
use crate::error::RedisHubError;
use crate::history::{History, Keys, Position};
use crate::open::open;
use crate::publisher::{Publisher, PublisherParts};
use crate::status::Status;
use crate::subscriber::Listener;
use crate::wire::ReplicaId;

/// The name of the hub's Redis stream, and the prefix of its other keys, unless
/// [`RedisHubBuilder::channel`] says otherwise.
pub const DEFAULT_CHANNEL: &str = "batch:changes";

/// A [`Hub`] that links replicas through Redis: each replica's change events reach
/// the subscribers of every replica on the same channel, once each and in the same
/// order, and the history clients resume from is kept in Redis, so a client may
/// resume on any replica.
///
/// Building it validates the URL and spawns two tasks on a tokio runtime (the
/// current one, or the one given to [`RedisHubBuilder::runtime`]): a publisher and a
/// reader, which connect in the background and reconnect by themselves. Clones
/// share the hub (keep one to watch [`is_subscribed`](Self::is_subscribed) after
/// handing the hub to an endpoint); dropping the last one stops the reader, and
/// the publisher sends what is queued and ends.
///
/// [`publish`](Hub::publish) never waits for Redis: the event is queued for the
/// publisher, which records it in Redis; every replica, this one too, delivers it
/// from there. See the [crate documentation](crate) for what happens when Redis is
/// down.
///
/// ```
/// use batch_core::{Event, Hub};
/// use batch_redis::RedisHub;
///
/// # #[tokio::main] async fn main() -> Result<(), batch_redis::RedisHubError> {
/// // Whether or not a Redis server answers there, the hub is built and serves this
/// // replica's subscribers.
/// let hub = RedisHub::builder("redis://127.0.0.1:6379/0")
///     .channel("shop:changes")
///     .build()?;
/// let event = Event::from_json(r#"{"type":"delete","uri":"/items/7"}"#.into()).unwrap();
/// hub.publish(event); // returns at once, Redis up or not
///
/// assert!(matches!(RedisHub::new("http://example.com"), Err(batch_redis::RedisHubError::Url(_))));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisHub(Arc<Inner>);

struct Inner {
    subscribers: Subscribers,
    history: History,
    outgoing: mpsc::Sender<Event>,
    status: Arc<Status>,
    listener: AbortHandle,
    replica: ReplicaId,
}

impl std::fmt::Debug for RedisHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHub")
            .field("replica", &self.0.replica)
            .field("subscribed", &self.is_subscribed())
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl RedisHub {
    /// A hub on `url` (`redis://[user:password@]host[:port][/db]`) with the default
    /// settings, its tasks spawned on the current tokio runtime.
    ///
    /// Fails when the URL is not a Redis URL or when called outside a tokio runtime;
    /// an unreachable server is no error (the hub connects in the background).
    pub fn new(url: &str) -> Result<Self, RedisHubError> {
        Self::builder(url).build()
    }

    /// A builder for a hub on `url`, to choose the channel, the queue, the reconnect
    /// delays or the runtime.
    pub fn builder(url: &str) -> RedisHubBuilder {
        RedisHubBuilder {
            url: url.to_owned(),
            channel: DEFAULT_CHANNEL.to_owned(),
            queue: 1024,
            stream_length: 100_000,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            runtime: None,
        }
    }

    /// This replica's id: 16 hex digits, random per hub, in each event it records
    /// (field `r` of the stream entry).
    pub fn replica_id(&self) -> &str {
        self.0.replica.as_str()
    }

    /// Whether this replica reads the shared stream right now, that is, whether
    /// events (other replicas' and, while Redis takes them, its own) reach its
    /// subscribers.
    pub fn is_subscribed(&self) -> bool {
        self.0.status.subscribed()
    }

    /// How many of this replica's events were not recorded in Redis since the hub
    /// was built (Redis unreachable, or the publishing queue full): the other
    /// replicas never see them. Its own subscribers got those that surely never
    /// reached Redis, with cursors only this replica knows.
    pub fn dropped(&self) -> u64 {
        self.0.status.dropped()
    }
}

impl Hub for RedisHub {
    fn publish(&self, event: Event) {
        let hub = &*self.0;
        match hub.outgoing.try_send(event) {
            Ok(()) => {
                if hub.status.queue_took() {
                    tracing::info!("Redis hub: the publishing queue takes events again");
                }
            }
            Err(TrySendError::Full(event)) => {
                hub.subscribers.deliver(&event);
                if hub.status.queue_overflowed() {
                    tracing::warn!(
                        "Redis hub: the publishing queue is full, dropping events for other replicas until it drains"
                    );
                }
            }
            // The publisher ends only with its runtime: nothing can be sent any more.
            Err(TrySendError::Closed(event)) => {
                hub.subscribers.deliver(&event);
                if hub.status.queue_overflowed() {
                    tracing::warn!(
                        "Redis hub: the publisher stopped with its runtime; events no longer reach other replicas"
                    );
                }
            }
        }
    }

    fn subscribers(&self) -> &Subscribers {
        &self.0.subscribers
    }

    fn since<'a>(&'a self, key: &'a str, cursor: Option<&'a str>) -> SinceFuture<'a> {
        let age = self.0.subscribers.retention().max_age;
        Box::pin(self.0.history.since(key, cursor, age, &self.0.subscribers))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Settings of a [`RedisHub`]; [`RedisHub::builder`] makes one. Its `Debug` output
/// leaves the URL out: it may hold a password.
#[derive(Clone)]
pub struct RedisHubBuilder {
    url: String,
    channel: String,
    queue: usize,
    stream_length: usize,
    first_delay: Duration,
    max_delay: Duration,
    runtime: Option<Handle>,
}

impl std::fmt::Debug for RedisHubBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHubBuilder")
            .field("channel", &self.channel)
            .field("queue", &self.queue)
            .field("stream_length", &self.stream_length)
            .field("first_delay", &self.first_delay)
            .field("max_delay", &self.max_delay)
            .finish_non_exhaustive()
    }
}

impl RedisHubBuilder {
    /// The name of the Redis stream, and the prefix of the hub's other keys (default
    /// [`DEFAULT_CHANNEL`]): replicas that share it share their events and their
    /// history; separate applications on one Redis need one each.
    pub fn channel(mut self, name: impl Into<String>) -> Self {
        self.channel = name.into();
        self
    }

    /// How many events may wait for the publisher (default 1024); beyond that, events
    /// go to this replica's subscribers only, and are logged, until the queue drains.
    pub fn queue(mut self, events: usize) -> Self {
        self.queue = events;
        self
    }

    /// About how many events the shared stream keeps, all URIs together (default
    /// 100,000; Redis trims it by whole blocks, so a little more): how far a replica
    /// that lost its connection catches up, and how old a cursor can be and still
    /// resume (besides `history_events` per URI and `history_age`).
    pub fn stream_length(mut self, events: usize) -> Self {
        self.stream_length = events;
        self
    }

    /// How long to wait before reconnecting after a failure: `first`, then twice as
    /// long after each failure, never more than `max` (defaults: 100 ms and 5 s).
    /// This also bounds how long cross-replica events take to resume once Redis is
    /// back.
    pub fn reconnect_delay(mut self, first: Duration, max: Duration) -> Self {
        self.first_delay = first;
        self.max_delay = max;
        self
    }

    /// The runtime the hub's tasks run on (default: the current one, which
    /// [`build`](Self::build) must then be called in).
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Validates the settings and spawns the hub's tasks.
    pub fn build(self) -> Result<RedisHub, RedisHubError> {
        if self.channel.is_empty() {
            return Err(RedisHubError::Setting("the channel name is empty"));
        }
        if self.queue == 0 {
            return Err(RedisHubError::Setting("the queue holds no event"));
        }
        if self.stream_length == 0 {
            return Err(RedisHubError::Setting("the stream holds no event"));
        }
        if self.first_delay.is_zero() || self.first_delay > self.max_delay {
            return Err(RedisHubError::Setting(
                "the first reconnect delay must be above zero and at most the maximum",
            ));
        }
        let (client, runtime) = open(&self.url, self.runtime)?;
        let replica = ReplicaId::random();
        let subscribers = Subscribers::new();
        let status = Arc::new(Status::default());
        let backoff = Backoff::new(self.first_delay, self.max_delay);
        let keys = Keys::new(self.channel);
        let (outgoing, queued) = mpsc::channel(self.queue);
        let publisher = Publisher::new(PublisherParts {
            client: client.clone(),
            keys: keys.clone(),
            replica,
            stream_length: self.stream_length,
            subscribers: subscribers.clone(),
            backoff: backoff.clone(),
            status: status.clone(),
        });
        runtime.spawn(publisher.run(queued));
        let (position, positions) = watch::channel(Position::default());
        let listener = Listener::new(
            client.clone(),
            keys.clone(),
            subscribers.clone(),
            backoff,
            status.clone(),
            position,
        );
        let listener = runtime.spawn(listener.run()).abort_handle();
        let history = History::new(client, keys, runtime, positions);
        Ok(RedisHub(Arc::new(Inner {
            subscribers,
            history,
            outgoing,
            status,
            listener,
            replica,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_urls_and_settings_are_refused_without_echoing_the_url() {
        for url in [
            "http://user:s3cret@example.com",
            "redis://user:s3cret@[::1",
            "not a url s3cret",
            "",
        ] {
            let err = RedisHub::new(url).unwrap_err();
            assert!(matches!(err, RedisHubError::Url(_)), "{url}: {err:?}");
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
        let url = "redis://127.0.0.1:1";
        let setting = |builder: RedisHubBuilder| match builder.build() {
            Err(RedisHubError::Setting(what)) => what,
            other => panic!("{other:?}"),
        };
        assert!(setting(RedisHub::builder(url).channel("")).contains("channel"));
        assert!(setting(RedisHub::builder(url).queue(0)).contains("queue"));
        assert!(setting(RedisHub::builder(url).stream_length(0)).contains("stream"));
        let ms = Duration::from_millis;
        assert!(setting(RedisHub::builder(url).reconnect_delay(ms(0), ms(5))).contains("delay"));
        assert!(setting(RedisHub::builder(url).reconnect_delay(ms(9), ms(5))).contains("delay"));
        let hub = RedisHub::builder(url).channel("x").build().unwrap();
        assert_eq!(hub.replica_id().len(), 16);
        let builder = RedisHub::builder("redis://user:s3cret@127.0.0.1");
        assert!(!format!("{builder:?} {hub:?}").contains("s3cret"));
    }

    #[test]
    fn a_hub_needs_a_runtime_unless_given_one() {
        assert!(matches!(
            RedisHub::new("redis://127.0.0.1:1"),
            Err(RedisHubError::NoRuntime)
        ));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let hub = RedisHub::builder("redis://127.0.0.1:1")
            .runtime(runtime.handle().clone())
            .build()
            .unwrap();
        assert!(!hub.is_subscribed());
    }
}
