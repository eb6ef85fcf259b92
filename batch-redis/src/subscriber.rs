//! The background task that reads every replica's events from the shared stream,
//! in the order Redis gave their seqs, and delivers them to this replica's
//! subscribers.

use std::sync::Arc;
use std::time::Duration;

use batch_core::Subscribers;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Value};
use thiserror::Error;
use tokio::sync::watch;
use tokio::time::{sleep, timeout};

use crate::backoff::Backoff;
use crate::history::{Keys, Position};
use crate::status::Status;
use crate::wire::{self, WireError};

/// How long connecting may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one read waits for events. A quiet read ends with a look at the
/// history's run: a connection that died without closing, or a Redis that lost
/// its data without closing it (`FLUSHALL`), is found within this plus
/// [`ANSWER_TIMEOUT`].
const BLOCK: Duration = Duration::from_secs(5);

/// How long Redis may take to answer, beyond the time a read blocks.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// How many events one read takes at most.
const BATCH: usize = 512;

/// Why reading ended or never started.
#[derive(Debug, Error)]
enum Lost {
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Reads the shared stream and keeps reading, reconnecting with backoff.
pub(crate) struct Listener {
    client: Client,
    keys: Keys,
    subscribers: Subscribers,
    backoff: Backoff,
    status: Arc<Status>,
    position: watch::Sender<Position>,
    /// Whether a connection ever read the history's run: the first one starts at
    /// the end of the stream, later ones where the last left off.
    started: bool,
}

impl Listener {
    pub(crate) fn new(
        client: Client,
        keys: Keys,
        subscribers: Subscribers,
        backoff: Backoff,
        status: Arc<Status>,
        position: watch::Sender<Position>,
    ) -> Self {
        Self {
            client,
            keys,
            subscribers,
            backoff,
            status,
            position,
            started: false,
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
                tracing::debug!(%redis, error = %lost, "Redis hub: still not subscribed to the stream");
            } else {
                tracing::warn!(
                    %redis,
                    error = %lost,
                    "Redis hub: not subscribed to the stream; events do not arrive until Redis is back, then it reads on from where it stopped (retrying)"
                );
                failing = true;
            }
            sleep(self.backoff.next_delay()).await;
        }
    }

    /// Connects, finds where to read from, and delivers events until the
    /// connection fails.
    async fn listen(&mut self, failing: &mut bool) -> Lost {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(BLOCK + ANSWER_TIMEOUT));
        let connecting = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        let mut connection = match timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(err)) => return err.into(),
            Err(_) => return Lost::Timeout(CONNECT_TIMEOUT),
        };
        if let Err(lost) = self.resync(&mut connection).await {
            return lost;
        }
        self.status.set_subscribed(true);
        self.backoff.reset();
        let redis = self.client.get_connection_info().addr();
        if std::mem::take(failing) {
            tracing::info!(%redis, stream = %self.keys.stream(), "Redis hub: subscribed again, reading the stream on from where it stopped");
        } else {
            tracing::info!(%redis, stream = %self.keys.stream(), "Redis hub: subscribed, reading the stream");
        }
        loop {
            let last = self.position.borrow().last;
            let mut read = redis::cmd("XREAD");
            read.arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("COUNT")
                .arg(BATCH)
                .arg("STREAMS")
                .arg(self.keys.stream())
                .arg(format!("{last}-0"));
            let reply = match timeout(
                BLOCK + ANSWER_TIMEOUT,
                read.query_async::<Value>(&mut connection),
            )
            .await
            {
                Ok(Ok(reply)) => reply,
                Ok(Err(err)) => return err.into(),
                Err(_) => return Lost::Timeout(BLOCK + ANSWER_TIMEOUT),
            };
            let entries = match wire::read(reply) {
                Ok(entries) => entries,
                Err(err) => return err.into(),
            };
            if entries.is_empty() {
                if let Err(lost) = self.resync(&mut connection).await {
                    return lost;
                }
                continue;
            }
            for entry in entries {
                let epoch = match (entry.epoch, self.position.borrow().epoch.clone()) {
                    (Some(run), Some(known)) if run != known => {
                        // The history was lost without the connection closing.
                        self.new_run(Some(run.clone()));
                        run
                    }
                    (Some(run), _) => run,
                    (None, Some(known)) => known,
                    (None, None) => continue,
                };
                self.subscribers.deliver_at(
                    &entry.event,
                    entry.seq,
                    &wire::cursor(&epoch, entry.seq),
                );
                self.position.send_modify(|at| {
                    at.epoch = Some(epoch);
                    at.last = entry.seq;
                });
            }
        }
    }

    /// Finds where to read from: the end of the stream the first time; where the
    /// last connection left off while the history's run is the same; the start of
    /// the new run when Redis lost the history (a restart without persistence).
    async fn resync(&mut self, connection: &mut MultiplexedConnection) -> Result<(), Lost> {
        let (epoch, last): (String, u64) = self.keys.run().query_async(connection).await?;
        let known = self.position.borrow().epoch.clone();
        if !self.started {
            self.started = true;
            self.subscribers.set_cursor(&wire::cursor(&epoch, last));
            self.position.send_replace(Position {
                epoch: Some(epoch),
                last,
            });
            return Ok(());
        }
        if known.as_deref() == Some(epoch.as_str()) {
            self.check_gap(connection).await
        } else {
            self.new_run(Some(epoch));
            Ok(())
        }
    }

    /// Redis lost the history this replica was reading: what was not delivered
    /// yet is lost; the new run is read from its start.
    fn new_run(&self, epoch: Option<String>) {
        tracing::warn!(
            stream = %self.keys.stream(),
            "Redis hub: Redis lost the history (restarted without persistence?); events not delivered yet are lost, and clients resuming from earlier cursors get a fresh state"
        );
        if let Some(epoch) = &epoch {
            self.subscribers.set_cursor(&wire::cursor(epoch, 0));
        }
        self.position.send_replace(Position { epoch, last: 0 });
    }

    /// Logs the events this replica can no longer deliver: trimmed from the
    /// shared stream while it was not reading.
    async fn check_gap(&self, connection: &mut MultiplexedConnection) -> Result<(), Lost> {
        let mut first = redis::cmd("XRANGE");
        first
            .arg(self.keys.stream())
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1);
        let reply: Value = first.query_async(connection).await?;
        let last = self.position.borrow().last;
        if let Some(oldest) = wire::entries(reply)?.first()
            && oldest.seq > last + 1
        {
            tracing::warn!(
                stream = %self.keys.stream(),
                lost = oldest.seq - last - 1,
                "Redis hub: events left the shared stream before this replica read them; its subscribers miss them"
            );
            self.position.send_modify(|at| at.last = oldest.seq - 1);
        }
        Ok(())
    }
}
