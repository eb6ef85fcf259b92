//! The background task that receives every replica's events from the Redis channel
//! and delivers the other replicas' to this one's subscribers.

use std::sync::Arc;
use std::time::Duration;

use batch_core::Subscribers;
use futures::StreamExt;
use redis::{Client, Msg, RedisError};
use thiserror::Error;
use tokio::time::{MissedTickBehavior, interval, sleep, timeout};

use crate::backoff::Backoff;
use crate::status::Status;
use crate::wire::{self, ReplicaId};

/// How long connecting and subscribing may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a quiet subscription checks that Redis still answers: a connection that
/// died without closing (a crashed host, a dropped route) is found within this plus
/// [`PING_TIMEOUT`].
const PING_EVERY: Duration = Duration::from_secs(15);

/// How long Redis may take to answer a ping.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a subscription ended or never started.
#[derive(Debug, Error)]
enum Lost {
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the connection closed")]
    Closed,
}

/// Subscribes to the channel and keeps subscribed, reconnecting with backoff.
pub(crate) struct Listener {
    client: Client,
    channel: String,
    replica: ReplicaId,
    subscribers: Subscribers,
    backoff: Backoff,
    status: Arc<Status>,
}

impl Listener {
    /// A listener on `channel` that skips `replica`'s own events.
    pub(crate) fn new(
        client: Client,
        channel: String,
        replica: ReplicaId,
        subscribers: Subscribers,
        backoff: Backoff,
        status: Arc<Status>,
    ) -> Self {
        Self {
            client,
            channel,
            replica,
            subscribers,
            backoff,
            status,
        }
    }

    /// Runs until the hub aborts it.
    pub(crate) async fn run(mut self) {
        // Whether the last attempt failed, so an outage is logged once, not per attempt.
        let mut failing = false;
        loop {
            let lost = self.listen(&mut failing).await;
            self.status.set_subscribed(false);
            let redis = self.client.get_connection_info().addr().to_string();
            if failing {
                tracing::debug!(%redis, error = %lost, "Redis hub: still cannot subscribe");
            } else {
                tracing::warn!(
                    %redis,
                    error = %lost,
                    "Redis hub: not subscribed; events of other replicas do not arrive until Redis is back (retrying)"
                );
                failing = true;
            }
            sleep(self.backoff.next_delay()).await;
        }
    }

    /// Subscribes and delivers events until the connection fails.
    async fn listen(&mut self, failing: &mut bool) -> Lost {
        let pubsub = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&self.channel).await?;
            Ok::<_, RedisError>(pubsub)
        };
        let pubsub = match timeout(CONNECT_TIMEOUT, pubsub).await {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(err)) => return err.into(),
            Err(_) => return Lost::Timeout(CONNECT_TIMEOUT),
        };
        self.status.set_subscribed(true);
        self.backoff.reset();
        let redis = self.client.get_connection_info().addr();
        if std::mem::take(failing) {
            tracing::info!(
                %redis,
                channel = %self.channel,
                "Redis hub: subscribed again; events other replicas published meanwhile are lost"
            );
        } else {
            tracing::info!(%redis, channel = %self.channel, replica = %self.replica.as_str(), "Redis hub: subscribed");
        }
        let (mut sink, mut messages) = pubsub.split();
        let mut ping = interval(PING_EVERY);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ping.reset();
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => self.receive(&message),
                    None => return Lost::Closed,
                },
                _ = ping.tick() => match timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return err.into(),
                    Err(_) => return Lost::Timeout(PING_TIMEOUT),
                },
            }
        }
    }

    /// Delivers a message from another replica; skips this replica's own.
    fn receive(&self, message: &Msg) {
        match wire::decode(&self.replica, message.get_payload_bytes()) {
            Ok(Some(event)) => self.subscribers.deliver(&event),
            Ok(None) => {}
            Err(err) => tracing::warn!(
                channel = %self.channel,
                error = %err,
                "Redis hub: ignored a message on the channel that is not a change event"
            ),
        }
    }
}
