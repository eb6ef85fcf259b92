//! The history every replica shares, in Redis: where each event gets its seq, and
//! what a client resuming on any replica is sent.
//!
//! Keys, for the hub's name `N` (its channel):
//!
//! - `N:meta`, a hash: `epoch`, the run of the history (16 random hex digits, made
//!   by the first replica that connects or records an event while there is none:
//!   at first, or after a Redis restart without persistence), `n`, the last seq
//!   given, and `t0`, when the run began.
//! - `N`, a stream of every event (the entry `<seq>-0` with the event's JSON, the
//!   epoch, the time and the replica that made it), capped at about
//!   [`RedisHubBuilder::stream_length`](crate::RedisHubBuilder::stream_length)
//!   entries: what each replica reads and delivers, in order.
//! - `N:uri:<U>`, a stream per resource and list URI with its events (same ids),
//!   capped at `history_events` entries (trimmed with `XDEL`, so that Redis keeps
//!   the newest id dropped), and deleted once no event came for `history_age`.
//!
//! A seq is given by one Lua script that also writes the three streams, so every
//! replica sees the same seq for an event, in the same order.

use std::time::Duration;

use batch_core::{Event, Retention, Since, Subscribers};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Value};
use thiserror::Error;
use tokio::runtime::Handle;
use tokio::sync::{Mutex, watch};

use crate::wire::{self, ReplicaId, WireError};

/// Lua that begins a run of the history (`ARGV[2]` its epoch) unless the meta hash
/// `KEYS[1]` holds one, and sets `now` to Redis's time in ms.
macro_rules! begin_run {
    () => {
        r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[2]) == 1 then
  redis.call('HSET', KEYS[1], 't0', now, 'n', 0)
end
"
    };
}

/// The run of the history and its last seq, the run begun if there is none.
/// `KEYS`: meta. `ARGV`: unused, an epoch for a new run.
const RUN: &str = concat!(
    begin_run!(),
    "return redis.call('HMGET', KEYS[1], 'epoch', 'n')"
);

/// Gives the event its seq and keeps it. `KEYS`: meta, the shared stream, then
/// the URI streams. `ARGV`: the event, an epoch for a new run, the replica, the
/// events kept per URI, how long a URI's history outlives its last event (ms),
/// the shared stream's length.
const RECORD: &str = concat!(
    begin_run!(),
    r"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local id = redis.call('HINCRBY', KEYS[1], 'n', 1) .. '-0'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], id, 'j', ARGV[1], 'e', epoch, 't', now, 'r', ARGV[3])
local keep = tonumber(ARGV[4])
for i = 3, #KEYS do
  redis.call('XADD', KEYS[i], id, 'j', ARGV[1])
  local excess = redis.call('XLEN', KEYS[i]) - keep
  if excess > 0 then
    local old = redis.call('XRANGE', KEYS[i], '-', '+', 'COUNT', excess)
    local ids = {}
    for j = 1, #old do ids[j] = old[j][1] end
    redis.call('XDEL', KEYS[i], unpack(ids))
  end
  redis.call('PEXPIRE', KEYS[i], ARGV[5])
end
return id
"
);

/// The events of one URI after a cursor, or nil when some may be gone. `KEYS`:
/// meta, the shared stream, the URI's stream. `ARGV`: the cursor's epoch and seq,
/// the last seq to answer, the history's age (ms).
///
/// An event of the URI after the cursor is gone when the stream dropped it (its
/// seq is at most the newest dropped id), or when the whole stream expired, which
/// only happens to events older than the age: so a cursor older than the age is
/// covered only when no event at all came after it.
const SINCE: &str = r"
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'n', 't0')
if meta[1] ~= ARGV[1] then return false end
local after = tonumber(ARGV[2])
local last = tonumber(meta[2])
if after > last then return false end
if after < last then
  local made
  if after == 0 then
    made = tonumber(meta[3])
  else
    local entry = redis.call('XRANGE', KEYS[2], ARGV[2] .. '-0', ARGV[2] .. '-0')
    if #entry == 0 then return false end
    local fields = entry[1][2]
    for i = 1, #fields, 2 do
      if fields[i] == 't' then made = tonumber(fields[i + 1]) end
    end
  end
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  if made == nil or made <= now - tonumber(ARGV[4]) then return false end
end
if redis.call('EXISTS', KEYS[3]) == 0 then return {} end
local info = redis.call('XINFO', 'STREAM', KEYS[3])
for i = 1, #info, 2 do
  if info[i] == 'max-deleted-entry-id' then
    local dropped = tonumber(string.match(info[i + 1], '^(%d+)'))
    if after < dropped then return false end
  end
end
return redis.call('XRANGE', KEYS[3], '(' .. ARGV[2] .. '-0', ARGV[3] .. '-0')
";

/// How long a resume waits for this replica to deliver the events up to the
/// client's cursor (seen on a replica ahead of this one) before answering a fresh
/// state instead.
const CATCH_UP: Duration = Duration::from_secs(1);

/// How long connecting, or the history's script, may take before a resume gets a
/// fresh state instead.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// The Redis keys of a hub named `name`.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    name: String,
}

impl Keys {
    pub(crate) fn new(name: String) -> Self {
        Self { name }
    }

    /// The stream of every event.
    pub(crate) fn stream(&self) -> &str {
        &self.name
    }

    /// The hash of the history's run and last seq.
    pub(crate) fn meta(&self) -> String {
        format!("{}:meta", self.name)
    }

    /// The stream of the events of the resource or list `uri`.
    fn of(&self, uri: &str) -> String {
        format!("{}:uri:{uri}", self.name)
    }

    /// The script call that answers the history's run and last seq, beginning a
    /// run (with a new epoch) when Redis holds none.
    pub(crate) fn run(&self) -> redis::Cmd {
        let mut command = redis::cmd("EVAL");
        command
            .arg(RUN)
            .arg(1)
            .arg(self.meta())
            .arg("")
            .arg(ReplicaId::random().as_str());
        command
    }

    /// The script call that gives `event` its seq and keeps it: one round trip.
    pub(crate) fn record(
        &self,
        event: &Event,
        epoch: &ReplicaId,
        replica: &ReplicaId,
        retention: Retention,
        stream_length: usize,
    ) -> redis::Cmd {
        let [uri, list] = event.keys();
        let mut command = redis::cmd("EVAL");
        command.arg(RECORD);
        if uri == list {
            command
                .arg(3)
                .arg(self.meta())
                .arg(self.stream())
                .arg(self.of(uri));
        } else {
            command
                .arg(4)
                .arg(self.meta())
                .arg(self.stream())
                .arg(self.of(uri))
                .arg(self.of(list));
        }
        command
            .arg(event.json().as_ref())
            .arg(epoch.as_str())
            .arg(replica.as_str())
            .arg(retention.max_events.max(1))
            .arg(millis(retention.max_age))
            .arg(stream_length);
        command
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Where this replica's delivery stands: the run it reads and the last seq it
/// delivered. The reader updates it; resumes wait on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) epoch: Option<String>,
    pub(crate) last: u64,
}

/// Why the shared history could not answer a resume.
#[derive(Debug, Error)]
enum Unanswered {
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the hub's runtime stopped")]
    Stopped,
}

/// Answers resumes from the history in Redis.
pub(crate) struct History {
    client: Client,
    keys: Keys,
    runtime: Handle,
    position: watch::Receiver<Position>,
    link: Mutex<Option<MultiplexedConnection>>,
}

impl History {
    pub(crate) fn new(
        client: Client,
        keys: Keys,
        runtime: Handle,
        position: watch::Receiver<Position>,
    ) -> Self {
        Self {
            client,
            keys,
            runtime,
            position,
            link: Mutex::new(None),
        }
    }

    /// The events of `key` after `cursor` up to the last this replica delivered to
    /// its `subscribers`, or [`Since::NotCovered`] when they may not all be there,
    /// or Redis does not answer in time.
    pub(crate) async fn since(
        &self,
        key: &str,
        cursor: Option<&str>,
        age: Duration,
        subscribers: &Subscribers,
    ) -> Since {
        let Some((epoch, after)) = cursor.and_then(wire::parse_cursor) else {
            return Since::NotCovered;
        };
        let Some(read) = self.caught_up(epoch, after).await else {
            return Since::NotCovered;
        };
        // The position moves once an event has been handed out, the subscribers'
        // cursor before: an event handed out just before the client's subscription
        // was made can be past the one and not the other. Answered only up to the
        // position, it would reach the client neither way.
        let up_to = match wire::parse_cursor(&subscribers.cursor()) {
            Some((run, handed)) if run == epoch => read.max(handed),
            _ => read,
        };
        match self.query(epoch, after, up_to, key, age).await {
            Ok(Some(events)) => Since::Missed { after, events },
            Ok(None) => Since::NotCovered,
            Err(err) => {
                tracing::debug!(error = %err, "Redis hub: the history did not answer a resume; sending a fresh state");
                Since::NotCovered
            }
        }
    }

    /// The last seq this replica delivered, once it is at least `after` (in run
    /// `epoch`), waiting a little for it to catch up.
    async fn caught_up(&self, epoch: &str, after: u64) -> Option<u64> {
        let mut position = self.position.clone();
        let reached = tokio::time::timeout(
            CATCH_UP,
            position.wait_for(|at| at.epoch.as_deref() != Some(epoch) || at.last >= after),
        )
        .await;
        let at = match reached {
            Ok(Ok(at)) => at.clone(),
            _ => return None,
        };
        (at.epoch.as_deref() == Some(epoch)).then_some(at.last)
    }

    async fn query(
        &self,
        epoch: &str,
        after: u64,
        up_to: u64,
        key: &str,
        age: Duration,
    ) -> Result<Option<Vec<Event>>, Unanswered> {
        let mut command = redis::cmd("EVAL");
        command
            .arg(SINCE)
            .arg(3)
            .arg(self.keys.meta())
            .arg(self.keys.stream())
            .arg(self.keys.of(key))
            .arg(epoch)
            .arg(after)
            .arg(up_to)
            .arg(millis(age));
        let mut connection = self.connection().await?;
        let reply =
            match tokio::time::timeout(QUERY_TIMEOUT, command.query_async(&mut connection)).await {
                Ok(Ok(reply)) => reply,
                failed => {
                    *self.link.lock().await = None;
                    return Err(match failed {
                        Ok(Err(err)) => err.into(),
                        _ => Unanswered::Timeout(QUERY_TIMEOUT),
                    });
                }
            };
        if reply == Value::Nil {
            return Ok(None);
        }
        let missed = wire::entries(reply)?
            .into_iter()
            .map(|entry| {
                entry
                    .event
                    .with_seq(entry.seq, &wire::cursor(epoch, entry.seq))
            })
            .collect();
        Ok(Some(missed))
    }

    /// The shared connection, made when there is none; its driver runs on the
    /// hub's runtime, which outlives the session that asked.
    async fn connection(&self) -> Result<MultiplexedConnection, Unanswered> {
        let mut link = self.link.lock().await;
        if let Some(connection) = &*link {
            return Ok(connection.clone());
        }
        let client = self.client.clone();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(QUERY_TIMEOUT))
            .set_response_timeout(Some(QUERY_TIMEOUT));
        let connecting = self.runtime.spawn(async move {
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await
        });
        let connection = connecting.await.map_err(|_| Unanswered::Stopped)??;
        *link = Some(connection.clone());
        Ok(connection)
    }
}
