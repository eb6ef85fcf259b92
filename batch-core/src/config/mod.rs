//! Server configuration of the batch endpoint, with the native format's defaults.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;

mod error;
mod socket;

pub use error::ConfigError;
pub use socket::{SocketConfig, SocketConfigBuilder};

use crate::headers::HeaderPolicy;
use crate::hooks::{self, BatchView, Hooks, OpView, Refusal, Routes};
use crate::idempotency::{self, IdempotencyStore};
use crate::model::{Capabilities, DEFAULT_MAX_BATCH_RESPONSE, Format};
use crate::problem::Problem;
use crate::target;

/// How the batch endpoint behaves: path, limits, timeouts and header policy.
///
/// [`Config::default`] holds the defaults of the native format (`docs/native-format.md`); change them
/// with [`Config::builder`]:
///
/// | setting | default |
/// |---|---|
/// | [`path`](ConfigBuilder::path) | `/batch` |
/// | [`max_ops`](ConfigBuilder::max_ops) | 50 per batch |
/// | [`max_body`](ConfigBuilder::max_body) | 1 MiB |
/// | [`max_concurrency`](ConfigBuilder::max_concurrency) | 16 ops of one batch at once |
/// | [`op_timeout`](ConfigBuilder::op_timeout) | 30 s (an op's `timeout_ms` may lower it) |
/// | [`batch_deadline`](ConfigBuilder::batch_deadline) | 60 s |
/// | [`max_response_body`](ConfigBuilder::max_response_body) | 8 MiB per op |
/// | [`max_batch_response`](ConfigBuilder::max_batch_response) | 16 MiB per buffered answer |
/// | [`max_in_flight`](ConfigBuilder::max_in_flight) | 1024 ops across all batches |
/// | [`header_policy`](ConfigBuilder::header_policy) | [`HeaderPolicy::default`] |
/// | [`format`](ConfigBuilder::format) | every [`Format`] but [`Format::Facebook`] |
/// | [`sockets`](ConfigBuilder::sockets) | off |
/// | [`idempotency`](ConfigBuilder::idempotency) | on: keyed batches run at most once |
/// | [`idempotency_ttl`](ConfigBuilder::idempotency_ttl) | 24 h |
/// | [`idempotency_store`](ConfigBuilder::idempotency_store) | a [`MemoryStore`](crate::MemoryStore) |
/// | [`idempotency_identity`](ConfigBuilder::idempotency_identity) | the `authorization` header |
///
/// ```
/// use std::time::Duration;
/// use batch_core::Config;
///
/// let config = Config::builder()
///     .path("/api/batch")
///     .max_ops(20)
///     .op_timeout(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(config.max_ops(), 20);
/// assert_eq!(config.max_body(), 1024 * 1024);
/// # Ok::<(), batch_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    path: String,
    max_ops: usize,
    max_body: usize,
    max_concurrency: usize,
    op_timeout: Duration,
    batch_deadline: Duration,
    max_response_body: usize,
    max_batch_response: usize,
    max_in_flight: usize,
    header_policy: HeaderPolicy,
    hooks: Hooks,
    formats: [bool; Format::ALL.len()],
    sockets: Option<SocketConfig>,
    idempotency: idempotency::Settings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path: "/batch".to_owned(),
            max_ops: 50,
            max_body: 1024 * 1024,
            max_concurrency: 16,
            op_timeout: Duration::from_secs(30),
            batch_deadline: Duration::from_secs(60),
            max_response_body: 8 * 1024 * 1024,
            max_batch_response: DEFAULT_MAX_BATCH_RESPONSE,
            max_in_flight: 1024,
            header_policy: HeaderPolicy::default(),
            hooks: Hooks::default(),
            // Facebook's form body can be sent cross-site by any page (CSRF).
            formats: Format::ALL.map(|format| format != Format::Facebook),
            sockets: None,
            idempotency: idempotency::Settings::default(),
        }
    }
}

impl Config {
    /// Starts from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Self::default(),
        }
    }

    /// The path the batch endpoint is mounted at; no op may target it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether a request for `path` is for the batch endpoint: the one rule every
    /// adapter routes by and every op is refused by. `path` matches when it equals
    /// [`Config::path`] after decoding percent-encoded unreserved characters,
    /// ignoring ASCII case and one trailing slash.
    ///
    /// ```
    /// let config = batch_core::Config::default();
    /// assert!(config.is_batch_path("/batch"));
    /// assert!(config.is_batch_path("/Batch/"));
    /// assert!(config.is_batch_path("/b%61tch"));
    /// assert!(!config.is_batch_path("/batches"));
    /// ```
    pub fn is_batch_path(&self, path: &str) -> bool {
        target::is_batch_path(path, &self.path)
    }

    /// The most operations one batch may carry.
    pub fn max_ops(&self) -> usize {
        self.max_ops
    }

    /// The largest batch body accepted, in bytes (a body of exactly this size is accepted).
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// How many operations of one batch run at the same time.
    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency
    }

    /// The longest an operation may run.
    pub fn op_timeout(&self) -> Duration {
        self.op_timeout
    }

    /// The longest a whole batch may run.
    pub fn batch_deadline(&self) -> Duration {
        self.batch_deadline
    }

    /// The largest response body of one operation, in bytes.
    pub fn max_response_body(&self) -> usize {
        self.max_response_body
    }

    /// The most bytes of results (bodies and headers) one buffered answer holds; a
    /// streamed answer holds none.
    pub fn max_batch_response(&self) -> usize {
        self.max_batch_response
    }

    /// The most operations running at once across all batches of one endpoint.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Which headers ops inherit and which they may set.
    pub fn header_policy(&self) -> &HeaderPolicy {
        &self.header_policy
    }

    pub(crate) fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// Whether the endpoint accepts batches in `format`.
    pub fn accepts(&self, format: Format) -> bool {
        self.formats[format.index()]
    }

    /// The socket endpoint's settings, when sockets are on.
    pub fn sockets(&self) -> Option<&SocketConfig> {
        self.sockets.as_ref()
    }

    /// Whether batches sent with an `Idempotency-Key` run at most once per key and
    /// caller.
    pub fn is_idempotent(&self) -> bool {
        self.idempotency.enabled
    }

    /// How long a keyed batch's answer is kept for retries.
    pub fn idempotency_ttl(&self) -> Duration {
        self.idempotency.ttl
    }

    pub(crate) fn idempotency(&self) -> &idempotency::Settings {
        &self.idempotency
    }

    /// What the endpoint advertises to clients (`OPTIONS` on its path): its limits,
    /// the formats it accepts and what it can do.
    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_ops: self.max_ops,
            max_body_bytes: self.max_body,
            max_concurrency: self.max_concurrency,
            formats: Format::ALL
                .into_iter()
                .filter(|&format| self.accepts(format))
                .map(|format| format.name().to_owned())
                .collect(),
            max_batch_response_bytes: self.max_batch_response,
            streaming: true,
            references: true,
            idempotency: self.is_idempotent(),
            socket_path: self.sockets.as_ref().map(|s| s.path().to_owned()),
        }
    }
}

impl Default for Capabilities {
    /// What a server with the default configuration advertises: what a client
    /// assumes of a server that does not say.
    fn default() -> Self {
        Config::default().capabilities()
    }
}

/// Builds a [`Config`]; see there for the settings and their defaults.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// Mounts the endpoint at `path` (default `/batch`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.config.path = path.into();
        self
    }

    /// Refuses batches of more than `max` operations with 413 (default 50).
    pub fn max_ops(mut self, max: usize) -> Self {
        self.config.max_ops = max;
        self
    }

    /// Refuses batch bodies larger than `bytes` with 413 (default 1 MiB).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.config.max_body = bytes;
        self
    }

    /// Runs at most `max` operations of one batch at once (default 16).
    pub fn max_concurrency(mut self, max: usize) -> Self {
        self.config.max_concurrency = max;
        self
    }

    /// Answers an operation still running after `timeout` with 504 (default 30 s).
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.config.op_timeout = timeout;
        self
    }

    /// Answers every operation not finished `deadline` after the batch started with
    /// 504 (default 60 s).
    pub fn batch_deadline(mut self, deadline: Duration) -> Self {
        self.config.batch_deadline = deadline;
        self
    }

    /// Answers an operation whose response body is larger than `bytes` with 502
    /// (default 8 MiB).
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.config.max_response_body = bytes;
        self
    }

    /// Caps the results one buffered answer holds at `bytes` of bodies and headers
    /// (default 16 MiB): once they would hold more, the op that finished past the cap
    /// and every op not yet finished are answered 507
    /// `{"error": "batch_response_too_large"}`, and those still running are
    /// cancelled. A streamed answer writes each result and drops it: no cap applies.
    pub fn max_batch_response(mut self, bytes: usize) -> Self {
        self.config.max_batch_response = bytes;
        self
    }

    /// Caps the operations running at once across all batches (default 1024); a batch
    /// that would exceed it gets 503 with `retry-after`.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.config.max_in_flight = max;
        self
    }

    /// Sets which headers ops inherit and which they may set.
    pub fn header_policy(mut self, policy: HeaderPolicy) -> Self {
        self.config.header_policy = policy;
        self
    }

    /// Runs `hook` on every validated batch before any op starts; an `Err` refuses
    /// the whole batch with that problem. Hooks run one after another, in the order
    /// they were added.
    ///
    /// The hook is called with a view of the batch and returns a future that owns
    /// what it needs of it, so the check itself may wait (on a database, a
    /// limiter in Redis) without blocking:
    ///
    /// ```
    /// use batch_core::{Config, Problem};
    /// use http::StatusCode;
    ///
    /// // At most two writes per batch; the third write is named in the refusal.
    /// let config = Config::builder()
    ///     .batch_hook(|batch| {
    ///         let third_write = batch
    ///             .ops()
    ///             .iter()
    ///             .filter(|op| op.method() != http::Method::GET)
    ///             .nth(2)
    ///             .map(|op| op.index());
    ///         async move {
    ///             match third_write {
    ///                 Some(index) => Err(Problem::new(
    ///                     StatusCode::UNPROCESSABLE_ENTITY,
    ///                     "at most 2 writes per batch",
    ///                 )
    ///                 .at_op(index)),
    ///                 None => Ok(()),
    ///             }
    ///         }
    ///     })
    ///     .build()?;
    /// # Ok::<(), batch_core::ConfigError>(())
    /// ```
    pub fn batch_hook<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(&BatchView<'_>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Problem>> + Send + 'static,
    {
        self.config.hooks.batch.push(hooks::batch_hook(hook));
        self
    }

    /// Runs `hook` on each op just before it starts; an `Err` answers the op with the
    /// refusal instead of running it (its dependents get 424). The op's timeout
    /// covers its hooks. Hooks run one after another, in the order they were added.
    ///
    /// Charging a rate limiter per op, so that batching cannot dodge it (the limiter
    /// here is a map; a real one may be a call to Redis, awaited in the future):
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::sync::{Arc, Mutex};
    /// use batch_core::{Config, Refusal};
    /// use http::StatusCode;
    ///
    /// // Five requests per caller; a real limiter would refill over time.
    /// let used = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
    /// let config = Config::builder()
    ///     .op_hook(move |op| {
    ///         let caller = op
    ///             .headers()
    ///             .get("authorization")
    ///             .and_then(|v| v.to_str().ok())
    ///             .unwrap_or("anonymous")
    ///             .to_owned();
    ///         let used = used.clone();
    ///         async move {
    ///             let mut used = used.lock().unwrap_or_else(|e| e.into_inner());
    ///             let count = used.entry(caller).or_default();
    ///             *count += 1;
    ///             if *count > 5 {
    ///                 return Err(Refusal::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    ///                     .retry_after(60));
    ///             }
    ///             Ok(())
    ///         }
    ///     })
    ///     .build()?;
    /// # Ok::<(), batch_core::ConfigError>(())
    /// ```
    pub fn op_hook<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(&OpView<'_>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Refusal>> + Send + 'static,
    {
        self.config.hooks.op.push(hooks::op_hook(hook));
        self
    }

    /// Refuses (403) any batch with an op whose path matches none of `patterns`:
    /// `/items` matches that path only, `/items/*` it and everything below it.
    /// Paths are matched after validation, so `/items/../admin` never reaches here.
    /// An op whose url takes a value from another op's result is matched again
    /// once the value is in, and refused alone (403 `{"error": "route_refused"}`).
    pub fn allow_routes(self, patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.routes(Routes::new(patterns), true)
    }

    /// Refuses (403) any batch with an op whose path matches one of `patterns`
    /// (same patterns as [`allow_routes`](Self::allow_routes)): keep login, password
    /// reset and one-time-code routes out of batches. As with `allow_routes`, an op
    /// whose url takes a value from another op's result is matched again once the
    /// value is in.
    pub fn deny_routes(self, patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.routes(Routes::new(patterns), false)
    }

    /// Route rules as a batch hook, for the batch as sent, and as an op hook, for
    /// the urls references complete as their ops start.
    fn routes(mut self, routes: Routes, allow: bool) -> Self {
        self.config
            .hooks
            .op
            .push(routes.clone().into_op_hook(allow));
        self.config.hooks.batch.push(routes.into_hook(allow));
        self
    }

    /// Switches a wire format on or off. Every [`Format`] but [`Format::Facebook`] is
    /// on by default; a batch in a format that is off is refused with 415.
    ///
    /// Facebook's format arrives as an HTML form body, which any web page can make a
    /// browser post cross-site with the user's cookies: enable it only where batches
    /// are authenticated by something a browser does not attach on its own (a bearer
    /// token), or behind a CSRF check.
    ///
    /// ```
    /// use batch_core::{Config, Format};
    ///
    /// let config = Config::builder()
    ///     .format(Format::Facebook, true)
    ///     .format(Format::Aggregate, false)
    ///     .build()?;
    /// assert!(config.accepts(Format::Facebook));
    /// assert!(!config.accepts(Format::Aggregate));
    /// assert!(config.accepts(Format::Native));
    /// # Ok::<(), batch_core::ConfigError>(())
    /// ```
    pub fn format(mut self, format: Format, enabled: bool) -> Self {
        self.config.formats[format.index()] = enabled;
        self
    }

    /// Serves real-time resources over WebSocket at [`SocketConfig::path`] (off by
    /// default): sockets create, patch, delete and subscribe to resources through
    /// the app's own routes, and subscribers are told of every change, whichever way
    /// it was made.
    pub fn sockets(mut self, sockets: SocketConfig) -> Self {
        self.config.sockets = Some(sockets);
        self
    }

    /// Switches idempotency keys on or off (default on). On, a batch sent with
    /// `Idempotency-Key: <key>` (1 to 255 visible ASCII characters; otherwise 400)
    /// runs at most once per key and caller, and the same request with the same key
    /// gets the stored answer again (see `docs/idempotency.md`). Off, the header is
    /// ignored.
    pub fn idempotency(mut self, enabled: bool) -> Self {
        self.config.idempotency.enabled = enabled;
        self
    }

    /// Keeps a keyed batch's answer for retries for `ttl` (default 24 h).
    pub fn idempotency_ttl(mut self, ttl: Duration) -> Self {
        self.config.idempotency.ttl = ttl;
        self
    }

    /// Keeps keys and answers in `store` (default: a [`MemoryStore`](crate::MemoryStore)
    /// of this process). Replicas behind one load balancer need a store they share,
    /// such as `batch_redis::RedisStore`, so that a retry landing on another replica
    /// finds the answer.
    pub fn idempotency_store(mut self, store: impl IdempotencyStore) -> Self {
        self.config.idempotency.store = Arc::new(store);
        self
    }

    /// Names the caller of a batch by what `identity` returns for the request (by
    /// default its `authorization` header; nothing for a request without one). Keys
    /// are kept per caller, as a hash of both, so one caller never gets another's
    /// answer. An app that authenticates by cookie, or whose authentication layer
    /// (outside the batch endpoint) puts the user in the request's extensions, names
    /// the caller here:
    ///
    /// ```
    /// use batch_core::Config;
    ///
    /// #[derive(Clone)]
    /// struct UserId(u64);
    ///
    /// let config = Config::builder()
    ///     .idempotency_identity(|request| {
    ///         request
    ///             .extensions
    ///             .get::<UserId>()
    ///             .map_or(0, |user| user.0)
    ///             .to_be_bytes()
    ///     })
    ///     .build()?;
    /// # Ok::<(), batch_core::ConfigError>(())
    /// ```
    pub fn idempotency_identity<F, T>(mut self, identity: F) -> Self
    where
        F: Fn(&Parts) -> T + Send + Sync + 'static,
        T: AsRef<[u8]>,
    {
        self.config.idempotency.identity = Arc::new(move |parts| identity(parts).as_ref().to_vec());
        self
    }

    /// Checks the settings and returns the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        let config = self.config;
        // Adapters mount the path as a literal route: route syntax would capture
        // parameters that leak into every op's own.
        if !config.path.starts_with('/') || config.path.contains(['?', '#', '{', '}', '*', ':']) {
            return Err(ConfigError::Path(config.path));
        }
        for (name, value) in [
            ("max_ops", config.max_ops),
            ("max_concurrency", config.max_concurrency),
            ("max_in_flight", config.max_in_flight),
            ("max_body", config.max_body),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if config.idempotency.ttl.is_zero() {
            return Err(ConfigError::Zero("idempotency_ttl"));
        }
        if !config.formats.contains(&true) {
            return Err(ConfigError::NoFormat);
        }
        if let Some(sockets) = &config.sockets {
            if config.is_batch_path(sockets.path()) {
                return Err(ConfigError::SocketPath(sockets.path().to_owned()));
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_defaults() {
        let config = Config::default();
        assert_eq!(config.path(), "/batch");
        assert_eq!(config.max_ops(), 50);
        assert_eq!(config.max_body(), 1 << 20);
        assert_eq!(config.max_concurrency(), 16);
        assert_eq!(config.op_timeout(), Duration::from_secs(30));
        assert_eq!(config.batch_deadline(), Duration::from_secs(60));
        assert_eq!(config.max_response_body(), 8 << 20);
        assert_eq!(config.max_batch_response(), 16 << 20);
        assert_eq!(config.max_in_flight(), 1024);
        assert!(config.is_idempotent());
        assert_eq!(config.idempotency_ttl(), Duration::from_secs(24 * 3600));
        for format in Format::ALL {
            assert_eq!(
                config.accepts(format),
                format != Format::Facebook,
                "{format:?}"
            );
        }
    }

    #[test]
    fn idempotency_is_advertised_as_configured() {
        assert!(Config::default().capabilities().idempotency);
        let off = Config::builder().idempotency(false).build().unwrap();
        assert!(!off.capabilities().idempotency);
        // What an older server advertises lacks the member: no keys are kept there.
        let older: Capabilities = serde_json::from_value(serde_json::json!({
            "max_ops": 50, "max_body_bytes": 1048576, "max_concurrency": 16,
            "formats": ["native"], "streaming": false, "references": false
        }))
        .unwrap();
        assert!(!older.idempotency);
    }

    #[test]
    fn unusable_settings_are_refused() {
        assert_eq!(
            Config::builder().path("batch").build().unwrap_err(),
            ConfigError::Path("batch".into())
        );
        for path in ["/batch/{id}", "/batch/*rest", "/batch/:id", "/batch?x"] {
            assert!(Config::builder().path(path).build().is_err(), "{path}");
        }
        assert_eq!(
            Config::builder().max_concurrency(0).build().unwrap_err(),
            ConfigError::Zero("max_concurrency")
        );
        let none = Format::ALL
            .into_iter()
            .fold(Config::builder(), |builder, format| {
                builder.format(format, false)
            });
        assert_eq!(none.build().unwrap_err(), ConfigError::NoFormat);
    }
}
