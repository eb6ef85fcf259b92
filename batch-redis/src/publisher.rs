//! The background task that hands this replica's events to Redis, which gives each
//! its seq and keeps it in the shared history.

use std::sync::Arc;

use batch_core::{Event, Subscribers};
use redis::aio::MultiplexedConnection;
use redis::{Client, RedisError};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::history::Keys;
use crate::status::Status;
use crate::wire::ReplicaId;

/// How many queued events one round trip to Redis carries at most.
const PIPELINE: usize = 64;

/// Records queued events in Redis, one pipeline of script calls per round trip;
/// every replica (this one too) then delivers them from the shared stream.
///
/// It connects when there is something to send. An event that cannot be sent
/// (Redis unreachable, the backoff not over) is delivered to this replica's
/// subscribers at once, stamped by this replica's own history, so that local
/// changes still flow; the other replicas never see it. An event whose pipeline
/// failed after it left may have been recorded: it is dropped (delivering it here
/// as well could deliver it twice).
pub(crate) struct Publisher {
    client: Client,
    keys: Keys,
    replica: ReplicaId,
    stream_length: usize,
    subscribers: Subscribers,
    backoff: Backoff,
    status: Arc<Status>,
    link: Option<MultiplexedConnection>,
    /// No connection attempt before this.
    retry_at: Instant,
    /// Events not recorded since the link went down; `None` while it is up.
    down: Option<u64>,
}

/// What a publisher is made of.
pub(crate) struct PublisherParts {
    pub(crate) client: Client,
    pub(crate) keys: Keys,
    pub(crate) replica: ReplicaId,
    pub(crate) stream_length: usize,
    pub(crate) subscribers: Subscribers,
    pub(crate) backoff: Backoff,
    pub(crate) status: Arc<Status>,
}

impl Publisher {
    pub(crate) fn new(parts: PublisherParts) -> Self {
        Self {
            client: parts.client,
            keys: parts.keys,
            replica: parts.replica,
            stream_length: parts.stream_length,
            subscribers: parts.subscribers,
            backoff: parts.backoff,
            status: parts.status,
            link: None,
            retry_at: Instant::now(),
            down: None,
        }
    }

    /// Records every event `queued` yields, until the hub is dropped.
    pub(crate) async fn run(mut self, mut queued: mpsc::Receiver<Event>) {
        let mut events = Vec::with_capacity(PIPELINE);
        while queued.recv_many(&mut events, PIPELINE).await > 0 {
            let retention = self.subscribers.retention();
            // The run the history starts if Redis has none (never had one, or lost
            // it): new each time, so that a run lost is never taken up again.
            let epoch = ReplicaId::random();
            let mut pipeline = redis::pipe();
            for event in &events {
                pipeline
                    .add_command(self.keys.record(
                        event,
                        &epoch,
                        &self.replica,
                        retention,
                        self.stream_length,
                    ))
                    .ignore();
            }
            self.send(&pipeline, &events).await;
            events.clear();
        }
    }

    /// Sends `pipeline` (the recording of `events`), or delivers them here only
    /// when Redis cannot be reached.
    async fn send(&mut self, pipeline: &redis::Pipeline, events: &[Event]) {
        if let Some(link) = &mut self.link {
            match pipeline.query_async::<()>(link).await {
                Ok(()) => return,
                // The connection was closed before the pipeline left (Redis restarted,
                // say): a fresh connection sends it, at once.
                Err(err) if err.is_connection_dropped() => {
                    tracing::debug!(error = %err, "Redis hub: publishing connection closed, reconnecting");
                    self.link = None;
                }
                // It may have reached Redis: delivering it here too could deliver it twice.
                Err(err) => {
                    self.link = None;
                    self.lost(&err, events, false);
                    return;
                }
            }
        }
        if Instant::now() < self.retry_at {
            self.not_sent(events, true);
            return;
        }
        let mut link = match self.client.get_multiplexed_async_connection().await {
            Ok(link) => link,
            Err(err) => return self.lost(&err, events, true),
        };
        match pipeline.query_async::<()>(&mut link).await {
            Ok(()) => {
                self.backoff.reset();
                if let Some(dropped) = self.down.take() {
                    tracing::info!(
                        redis = %self.client.get_connection_info().addr(),
                        dropped,
                        "Redis hub: publishing again; events of this replica not recorded while Redis was unreachable are lost for the others"
                    );
                }
                self.link = Some(link);
            }
            Err(err) => self.lost(&err, events, false),
        }
    }

    /// Redis could not take `events`: the fault is logged (once per outage), the
    /// next attempt waits for the backoff, and the events are delivered here when
    /// they surely never reached Redis (`unsent`).
    fn lost(&mut self, err: &RedisError, events: &[Event], unsent: bool) {
        if self.down.is_none() {
            tracing::warn!(
                redis = %self.client.get_connection_info().addr(),
                error = %err,
                "Redis hub: cannot publish; events of this replica no longer reach the others until Redis is back"
            );
            self.down = Some(0);
        }
        self.retry_at = Instant::now() + self.backoff.next_delay();
        self.not_sent(events, unsent);
    }

    fn not_sent(&mut self, events: &[Event], unsent: bool) {
        let count = events.len() as u64;
        if unsent {
            for event in events {
                self.subscribers.deliver(event);
            }
        }
        self.status.add_dropped(count);
        if let Some(dropped) = &mut self.down {
            *dropped += count;
        }
    }
}
