//! The bench's own `redis-server`, shared by the parts that have a Redis row (the
//! idempotency store, the resume hub).

use fixture::redis::RedisServer;

/// A `redis-server` of the bench's own, and a runtime for the connections of the
/// stores and hubs built on it, which outlives every server using them.
pub(crate) struct Redis {
    server: RedisServer,
    runtime: tokio::runtime::Runtime,
}

impl Redis {
    /// Starts one, or says why the Redis rows are skipped (no `redis-server`).
    pub(crate) fn start() -> Option<Self> {
        let server = match RedisServer::start() {
            Ok(server) => server,
            Err(err) => {
                eprintln!("rows with Redis: skipped ({err})");
                return None;
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .ok()?;
        Some(Self { server, runtime })
    }

    /// Where it listens, as a `redis://` URL.
    pub(crate) fn url(&self) -> String {
        self.server.url()
    }

    /// The runtime the connections to it run on.
    pub(crate) fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }
}
