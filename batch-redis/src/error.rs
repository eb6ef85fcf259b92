//! Why a Redis hub cannot be built.

use thiserror::Error;

/// A [`RedisHub`](crate::RedisHub) or [`RedisStore`](crate::RedisStore) that cannot
/// be built: nothing was started.
#[derive(Debug, Error)]
pub enum RedisHubError {
    /// The URL is not one the Redis client accepts. The message names what is wrong
    /// and never repeats the URL, which may hold a password.
    #[error("not a usable Redis URL (expected redis://[user:password@]host[:port][/db]): {0}")]
    Url(String),
    /// No tokio runtime to run the hub's tasks (or the store's connection) on: build
    /// it inside one, or give one with
    /// [`RedisHubBuilder::runtime`](crate::RedisHubBuilder::runtime)
    /// ([`RedisStoreBuilder::runtime`](crate::RedisStoreBuilder::runtime)).
    #[error(
        "a Redis hub or store needs a tokio runtime: build it inside one, or pass one to its builder's runtime()"
    )]
    NoRuntime,
    /// A setting of the builder is out of range.
    #[error("invalid Redis setting: {0}")]
    Setting(&'static str),
}
