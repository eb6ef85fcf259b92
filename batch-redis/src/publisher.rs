//! The background task that sends this replica's events to the Redis channel.

use std::sync::Arc;

use batch_core::Event;
use redis::aio::MultiplexedConnection;
use redis::{Client, RedisError};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::status::Status;
use crate::wire::{self, ReplicaId};

/// How many queued events one round trip to Redis carries at most.
const PIPELINE: usize = 64;

/// Sends queued events to the channel, one pipeline of `PUBLISH`es per round trip.
///
/// It connects when there is something to send. While Redis is unreachable it drops
/// what it is handed at once (pub/sub has no replay, and holding events would only
/// deliver them late), and tries again when the backoff allows.
pub(crate) struct Publisher {
    client: Client,
    channel: String,
    replica: ReplicaId,
    backoff: Backoff,
    status: Arc<Status>,
    link: Option<MultiplexedConnection>,
    /// No connection attempt before this.
    retry_at: Instant,
    /// Events dropped since the link went down; `None` while it is up.
    down: Option<u64>,
}

impl Publisher {
    /// A publisher to `channel`, tagging events with `replica`.
    pub(crate) fn new(
        client: Client,
        channel: String,
        replica: ReplicaId,
        backoff: Backoff,
        status: Arc<Status>,
    ) -> Self {
        Self {
            client,
            channel,
            replica,
            backoff,
            status,
            link: None,
            retry_at: Instant::now(),
            down: None,
        }
    }

    /// Sends every event `queued` yields, until the hub is dropped.
    pub(crate) async fn run(mut self, mut queued: mpsc::Receiver<Event>) {
        let mut events = Vec::with_capacity(PIPELINE);
        while queued.recv_many(&mut events, PIPELINE).await > 0 {
            let mut pipeline = redis::pipe();
            for event in events.drain(..) {
                pipeline
                    .cmd("PUBLISH")
                    .arg(&self.channel)
                    .arg(wire::encode(&self.replica, &event))
                    .ignore();
            }
            self.send(&pipeline).await;
        }
    }

    /// Sends `pipeline`, or drops it when Redis cannot be reached.
    async fn send(&mut self, pipeline: &redis::Pipeline) {
        let count = pipeline.len() as u64;
        if let Some(link) = &mut self.link {
            match pipeline.query_async::<()>(link).await {
                Ok(()) => return,
                // The connection was closed before the pipeline left (Redis restarted,
                // say): a fresh connection sends it, at once.
                Err(err) if err.is_connection_dropped() => {
                    tracing::debug!(error = %err, "Redis hub: publishing connection closed, reconnecting");
                    self.link = None;
                }
                // It may have reached Redis: sending it again could deliver it twice.
                Err(err) => {
                    self.link = None;
                    self.lost(&err, count);
                    return;
                }
            }
        }
        if Instant::now() < self.retry_at {
            self.drop_events(count);
            return;
        }
        let mut link = match self.client.get_multiplexed_async_connection().await {
            Ok(link) => link,
            Err(err) => return self.lost(&err, count),
        };
        match pipeline.query_async::<()>(&mut link).await {
            Ok(()) => {
                self.backoff.reset();
                if let Some(dropped) = self.down.take() {
                    tracing::info!(
                        redis = %self.client.get_connection_info().addr(),
                        dropped,
                        "Redis hub: publishing again; events of this replica dropped while Redis was unreachable are lost for the others"
                    );
                }
                self.link = Some(link);
            }
            Err(err) => self.lost(&err, count),
        }
    }

    /// Redis could not take `count` events: they are dropped, the fault is logged
    /// (once per outage), and the next attempt waits for the backoff.
    fn lost(&mut self, err: &RedisError, count: u64) {
        if self.down.is_none() {
            tracing::warn!(
                redis = %self.client.get_connection_info().addr(),
                error = %err,
                "Redis hub: cannot publish; events of this replica no longer reach the others until Redis is back"
            );
            self.down = Some(0);
        }
        self.retry_at = Instant::now() + self.backoff.next_delay();
        self.drop_events(count);
    }

    fn drop_events(&mut self, count: u64) {
        self.status.add_dropped(count);
        if let Some(dropped) = &mut self.down {
            *dropped += count;
        }
    }
}
