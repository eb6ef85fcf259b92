//! Idempotency keys kept in Redis, shared by every replica.

use std::sync::Arc;
use std::time::Duration;

use batch_core::{Entry, IdempotencyStore, StoreError, StoreFuture, StoreKey};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};
use tokio::runtime::Handle;
use tokio::sync::Mutex;

use crate::error::RedisHubError;
use crate::open::open;

/// The prefix of the Redis keys the store writes unless
/// [`RedisStoreBuilder::prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "batch:idempotency:";

/// Sets the key to the claim unless it exists, and answers what it holds otherwise:
/// one atomic step, so that of two replicas claiming one key, one wins.
const CLAIM: &str = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then \
                     return false else return redis.call('GET', KEYS[1]) end";

/// An [`IdempotencyStore`] in Redis: replicas that share it answer each other's
/// retries, and a keyed batch runs once across all of them.
///
/// Give it to [`ConfigBuilder::idempotency_store`](batch_core::ConfigBuilder::idempotency_store).
/// It takes the same URL as [`RedisHub`](crate::RedisHub) (one Redis can serve both)
/// and connects when the first keyed batch comes, on the runtime it was built on
/// (or the one given to [`RedisStoreBuilder::runtime`]), reconnecting after a
/// failure. While Redis cannot be reached, every keyed batch is refused with 503 and
/// `retry-after` rather than run without its guarantee; batches without a key do
/// not touch Redis.
///
/// Each key is one Redis string, `<prefix><hash of caller and key>`, written with
/// `SET ... NX PX` while its batch runs and overwritten with the answer, both
/// expiring with the idempotency TTL (after a century at most: Redis refuses a
/// longer expiry).
///
/// ```
/// use batch_core::{BatchEndpoint, Config};
/// use batch_redis::RedisStore;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::new("redis://127.0.0.1:6379")?; // connects on first use
/// let config = Config::builder().idempotency_store(store).build()?;
/// let endpoint = BatchEndpoint::new(config);
/// # drop(endpoint);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore(Arc<Inner>);

struct Inner {
    client: Client,
    prefix: String,
    timeout: Duration,
    runtime: Handle,
    link: Mutex<Option<MultiplexedConnection>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field(
                "redis",
                &self.0.client.get_connection_info().addr().to_string(),
            )
            .field("prefix", &self.0.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `url` (`redis://[user:password@]host[:port][/db]`) with the default
    /// settings, connecting on the current tokio runtime.
    pub fn new(url: &str) -> Result<Self, RedisHubError> {
        Self::builder(url).build()
    }

    /// A builder for a store on `url`.
    pub fn builder(url: &str) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.to_owned(),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: Duration::from_secs(1),
            runtime: None,
        }
    }

    fn redis_key(&self, key: &StoreKey) -> String {
        format!("{}{key}", self.0.prefix)
    }

    /// Runs `command` on the shared connection, connecting first when there is none;
    /// a failed command drops the connection, so the next one starts afresh.
    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, StoreError> {
        let mut link = self.0.link.lock().await;
        let mut connection = match &*link {
            Some(connection) => connection.clone(),
            None => {
                let connection = self.connect().await?;
                *link = Some(connection.clone());
                connection
            }
        };
        drop(link);
        match command.query_async(&mut connection).await {
            Ok(value) => Ok(value),
            Err(err) => {
                *self.0.link.lock().await = None;
                Err(unavailable(err))
            }
        }
    }

    /// A connection whose driver runs on the store's runtime, which outlives the
    /// request that asked for it.
    async fn connect(&self) -> Result<MultiplexedConnection, StoreError> {
        let client = self.0.client.clone();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.0.timeout))
            .set_response_timeout(Some(self.0.timeout));
        let connecting = self.0.runtime.spawn(async move {
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await
        });
        match connecting.await {
            Ok(connected) => connected.map_err(unavailable),
            Err(stopped) => Err(StoreError::Unavailable(Box::new(stopped))),
        }
    }
}

fn unavailable(err: RedisError) -> StoreError {
    StoreError::Unavailable(Box::new(err))
}

/// The longest expiry the store sets: a century. Redis refuses an expiry that ends
/// past its clock's range ("invalid expire time"), so a longer TTL (such as
/// `Duration::MAX`, a key that is never forgotten) expires after a century instead.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `ttl` as the milliseconds Redis's `PX` takes: at least one, at most [`LONGEST`].
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.min(LONGEST).as_millis()).map_or(u64::MAX, |ms| ms.max(1))
}

impl IdempotencyStore for RedisStore {
    fn claim<'a>(
        &'a self,
        key: &'a StoreKey,
        entry: &'a Entry,
        ttl: Duration,
    ) -> StoreFuture<'a, Option<Entry>> {
        Box::pin(async move {
            let mut command = redis::cmd("EVAL");
            command
                .arg(CLAIM)
                .arg(1)
                .arg(self.redis_key(key))
                .arg(entry.to_bytes())
                .arg(millis(ttl));
            let held: Option<Vec<u8>> = self.query(&command).await?;
            held.map(|bytes| Entry::from_bytes(&bytes)).transpose()
        })
    }

    fn answer<'a>(
        &'a self,
        key: &'a StoreKey,
        answer: &'a Entry,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut command = redis::cmd("SET");
            command
                .arg(self.redis_key(key))
                .arg(answer.to_bytes())
                .arg("PX")
                .arg(millis(ttl));
            self.query::<()>(&command).await
        })
    }

    fn release<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut command = redis::cmd("DEL");
            command.arg(self.redis_key(key));
            self.query::<()>(&command).await
        })
    }
}

/// Settings of a [`RedisStore`]; [`RedisStore::builder`] makes one. Its `Debug`
/// output leaves the URL out: it may hold a password.
#[derive(Clone)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    runtime: Option<Handle>,
}

impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// The prefix of the store's Redis keys (default [`DEFAULT_PREFIX`]): separate
    /// applications on one Redis need one each.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long connecting, or one command, may take before the keyed batch waiting
    /// on it is refused with 503 (default 1 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The runtime the store's connection runs on (default: the current one, which
    /// [`build`](Self::build) must then be called in). Give the runtime that
    /// outlives the servers using the store when they each bring their own.
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Validates the settings; nothing connects yet.
    pub fn build(self) -> Result<RedisStore, RedisHubError> {
        if self.timeout.is_zero() {
            return Err(RedisHubError::Setting("the timeout must be above zero"));
        }
        let (client, runtime) = open(&self.url, self.runtime)?;
        Ok(RedisStore(Arc::new(Inner {
            client,
            prefix: self.prefix,
            timeout: self.timeout,
            runtime,
            link: Mutex::new(None),
        })))
    }
}
