//! Settings of the socket endpoint: real-time resources over WebSocket.

use std::time::Duration;

use super::error::ConfigError;

/// How the socket endpoint behaves: its path, who may open a socket, and the
/// limits that keep one client from holding what others need.
///
/// Sockets are off until [`ConfigBuilder::sockets`](super::ConfigBuilder::sockets)
/// turns them on. [`SocketConfig::default`] holds these defaults; change them with
/// [`SocketConfig::builder`]:
///
/// | setting | default | beyond it |
/// |---|---|---|
/// | [`path`](SocketConfigBuilder::path) | `/socket` | |
/// | [`events_path`](SocketConfigBuilder::events_path) | `/events` | |
/// | [`allow_origins`](SocketConfigBuilder::allow_origins) | the request's own host | a browser upgrade from another origin: 403 |
/// | [`max_message`](SocketConfigBuilder::max_message) | 64 KiB | the socket is closed with 1009 |
/// | [`max_subscriptions`](SocketConfigBuilder::max_subscriptions) | 100 per socket | that subscribe is an `error` 429 |
/// | [`max_queued`](SocketConfigBuilder::max_queued) | 256 messages per socket, a resume's replay aside | the socket is closed with 1013 |
/// | [`max_sockets`](SocketConfigBuilder::max_sockets) | 10 000 open at once | an upgrade is answered 503 with `retry-after` |
/// | [`max_in_flight`](SocketConfigBuilder::max_in_flight) | 16 messages per socket | later messages wait to be read |
/// | [`ping_interval`](SocketConfigBuilder::ping_interval) | 25 s | |
/// | [`idle_timeout`](SocketConfigBuilder::idle_timeout) | 60 s without a pong | the socket is closed with 1001 |
/// | [`recheck`](SocketConfigBuilder::recheck) | 60 s | a subscription's `GET` runs again before its next event |
///
/// ```
/// use std::time::Duration;
/// use batch_core::{Config, SocketConfig};
///
/// let sockets = SocketConfig::builder()
///     .allow_origins(["https://app.example.com"])
///     .max_subscriptions(20)
///     .ping_interval(Duration::from_secs(10))
///     .build()?;
/// let config = Config::builder().sockets(sockets).build()?;
/// assert_eq!(config.sockets().map(SocketConfig::path), Some("/socket"));
/// # Ok::<(), batch_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SocketConfig {
    path: String,
    events_path: String,
    allowed_origins: Option<Vec<String>>,
    max_message: usize,
    max_subscriptions: usize,
    max_queued: usize,
    max_sockets: usize,
    max_in_flight: usize,
    ping_interval: Duration,
    idle_timeout: Duration,
    close_grace: Duration,
    slow_reader_grace: Duration,
    history_events: usize,
    history_age: Duration,
    recheck: Option<Duration>,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            path: "/socket".to_owned(),
            events_path: "/events".to_owned(),
            allowed_origins: None,
            max_message: 64 * 1024,
            max_subscriptions: 100,
            max_queued: 256,
            max_sockets: 10_000,
            max_in_flight: 16,
            ping_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            close_grace: Duration::from_secs(5),
            slow_reader_grace: Duration::from_secs(60),
            history_events: 1000,
            history_age: Duration::from_secs(300),
            recheck: Some(Duration::from_secs(60)),
        }
    }
}

impl SocketConfig {
    /// Starts from the defaults.
    pub fn builder() -> SocketConfigBuilder {
        SocketConfigBuilder {
            config: Self::default(),
        }
    }

    /// The path sockets are opened at (`GET` with `Upgrade: websocket`); no op may
    /// target it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Where the Server-Sent Events stream of subscriptions is served.
    pub fn events_path(&self) -> &str {
        &self.events_path
    }

    /// Whether a browser page from `origin` may open a socket on a request for
    /// `host`: an origin on the allow list, or, without one, an origin whose host
    /// and port are the request's own.
    pub fn allows_origin(&self, origin: &str, host: Option<&str>) -> bool {
        match &self.allowed_origins {
            Some(allowed) => allowed.iter().any(|o| o.eq_ignore_ascii_case(origin)),
            None => origin.split_once("://").is_some_and(|(_, authority)| {
                host.is_some_and(|h| h.eq_ignore_ascii_case(authority))
            }),
        }
    }

    /// The largest client message, in bytes.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// The most resources one socket may subscribe to.
    pub fn max_subscriptions(&self) -> usize {
        self.max_subscriptions
    }

    /// The most messages waiting to be written to one socket, a resume's replay
    /// aside.
    pub fn max_queued(&self) -> usize {
        self.max_queued
    }

    /// The most sockets open at once on one endpoint.
    pub fn max_sockets(&self) -> usize {
        self.max_sockets
    }

    /// The most messages of one socket running at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// How often the server pings an idle socket.
    pub fn ping_interval(&self) -> Duration {
        self.ping_interval
    }

    /// How long a socket may go without answering a ping before it is closed.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// How long the server waits for the client's close frame after sending its own.
    pub fn close_grace(&self) -> Duration {
        self.close_grace
    }

    /// How long a socket closed for reading too slowly is kept, holding nothing, so
    /// that its reader sees the close when it next reads.
    pub fn slow_reader_grace(&self) -> Duration {
        self.slow_reader_grace
    }

    /// How many of the latest events of each URI are kept for clients that resume.
    pub fn history_events(&self) -> usize {
        self.history_events
    }

    /// How long an event is kept for clients that resume.
    pub fn history_age(&self) -> Duration {
        self.history_age
    }

    /// How old a subscription's last check may be before an event is delivered to
    /// it: older, its `GET` runs again first, and a non-2xx answer revokes it.
    /// `None` when subscriptions are never checked again.
    pub fn recheck(&self) -> Option<Duration> {
        self.recheck
    }
}

/// Builds a [`SocketConfig`]; see there for the settings and their defaults.
#[derive(Debug, Clone)]
#[must_use]
pub struct SocketConfigBuilder {
    config: SocketConfig,
}

impl SocketConfigBuilder {
    /// Serves sockets at `path` (default `/socket`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.config.path = path.into();
        self
    }

    /// Accepts browser upgrades (those with an `Origin` header) only from these
    /// origins, written `scheme://host[:port]`. By default only an origin whose host
    /// and port are the request's `Host` is accepted. Clients that send no `Origin`
    /// (not browsers) are not affected.
    pub fn allow_origins(mut self, origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.config.allowed_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Closes a socket that sends a message (text or binary) larger than `bytes`
    /// with 1009 (default 64 KiB); nothing it sends after that runs.
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.config.max_message = bytes;
        self
    }

    /// Refuses a subscription beyond `max` per socket with an `error` 429 (default
    /// 100).
    pub fn max_subscriptions(mut self, max: usize) -> Self {
        self.config.max_subscriptions = max;
        self
    }

    /// Closes a socket with 1013 once more than `max` messages wait to be written to
    /// it (default 256): a slow reader never holds memory or other sockets back.
    /// The events a resume replays are not counted: they are bounded apart, by
    /// [`history_events`](Self::history_events) times
    /// [`max_subscriptions`](Self::max_subscriptions), so that a replay the history
    /// holds is always delivered.
    pub fn max_queued(mut self, max: usize) -> Self {
        self.config.max_queued = max;
        self
    }

    /// Answers an upgrade beyond `max` open sockets with 503 and `retry-after`
    /// (default 10 000).
    pub fn max_sockets(mut self, max: usize) -> Self {
        self.config.max_sockets = max;
        self
    }

    /// Runs at most `max` messages of one socket at once (default 16); the socket's
    /// next message is read when one finishes.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.config.max_in_flight = max;
        self
    }

    /// Pings a socket every `interval` (default 25 s).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.config.ping_interval = interval;
        self
    }

    /// Closes a socket with 1001 once nothing came from its client for `timeout`
    /// (default 60 s), whether or not the server's writes to it are waiting. While
    /// the socket has [`max_in_flight`](Self::max_in_flight) messages running the
    /// server reads nothing, so that time does not count.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// Waits up to `grace` for the client's close frame after sending the server's
    /// (default 5 s).
    pub fn close_grace(mut self, grace: Duration) -> Self {
        self.config.close_grace = grace;
        self
    }

    /// Keeps a socket closed for reading too slowly for up to `grace`, holding
    /// nothing, until its reader sees the close (default 60 s).
    pub fn slow_reader_grace(mut self, grace: Duration) -> Self {
        self.config.slow_reader_grace = grace;
        self
    }

    /// Keeps the latest `events` change events of each URI (default 1000) for a
    /// `subscribe` with `since` to replay; a cursor older than them gets a fresh
    /// `state` with `reset`.
    pub fn history_events(mut self, events: usize) -> Self {
        self.config.history_events = events;
        self
    }

    /// Keeps change events for `age` (default 5 minutes) for a `subscribe` with
    /// `since` to replay; a cursor older than that gets a fresh `state` with `reset`.
    pub fn history_age(mut self, age: Duration) -> Self {
        self.config.history_age = age;
        self
    }

    /// Re-runs a subscription's `GET`, with the identity of the request that opened
    /// the socket, before delivering an event to it when its last check is older
    /// than `interval` (default 60 s; `Duration::ZERO` checks before every event),
    /// so that a client that lost the right to read a resource stops being told of
    /// its changes: a non-2xx answer ends the subscription with `revoked`. `None`
    /// never checks again after the `subscribe`.
    pub fn recheck(mut self, interval: Option<Duration>) -> Self {
        self.config.recheck = interval;
        self
    }

    /// Serves the Server-Sent Events stream of subscriptions at `path` (default
    /// `/events`): `GET /events?uri=U&uri=U2` with the identity of its headers.
    pub fn events_path(mut self, path: impl Into<String>) -> Self {
        self.config.events_path = path.into();
        self
    }

    /// Checks the settings and returns the configuration.
    pub fn build(self) -> Result<SocketConfig, ConfigError> {
        let config = self.config;
        for path in [&config.path, &config.events_path] {
            if !path.starts_with('/') || path.contains(['?', '#', '{', '}', '*', ':']) {
                return Err(ConfigError::SocketPath(path.clone()));
            }
        }
        for origin in config.allowed_origins.iter().flatten() {
            let well_formed = origin.split_once("://").is_some_and(|(scheme, host)| {
                !scheme.is_empty() && !host.is_empty() && !host.contains('/')
            });
            if !well_formed {
                return Err(ConfigError::Origin(origin.clone()));
            }
        }
        for (name, value) in [
            ("max_message", config.max_message),
            ("max_subscriptions", config.max_subscriptions),
            ("max_queued", config.max_queued),
            ("max_sockets", config.max_sockets),
            ("max_in_flight", config.max_in_flight),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_the_hosts_own_unless_listed() {
        let own = SocketConfig::default();
        assert!(own.allows_origin("http://127.0.0.1:3000", Some("127.0.0.1:3000")));
        assert!(!own.allows_origin("http://evil.example", Some("127.0.0.1:3000")));
        assert!(!own.allows_origin("http://127.0.0.1:3001", Some("127.0.0.1:3000")));
        assert!(!own.allows_origin("null", Some("127.0.0.1:3000")));
        let listed = SocketConfig::builder()
            .allow_origins(["https://app.example.com"])
            .build()
            .unwrap();
        assert!(listed.allows_origin("https://APP.example.com", Some("api.example.com")));
        assert!(!listed.allows_origin("https://api.example.com", Some("api.example.com")));
    }

    #[test]
    fn unusable_settings_are_refused() {
        assert!(matches!(
            SocketConfig::builder().path("socket").build(),
            Err(ConfigError::SocketPath(_))
        ));
        assert!(matches!(
            SocketConfig::builder()
                .allow_origins(["example.com"])
                .build(),
            Err(ConfigError::Origin(_))
        ));
        assert_eq!(
            SocketConfig::builder().max_queued(0).build().unwrap_err(),
            ConfigError::Zero("max_queued")
        );
    }
}
