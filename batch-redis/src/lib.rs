//! Change events of real-time resources across replicas, through Redis pub/sub;
//! idempotency keys shared by replicas.
//!
//! [`RedisHub`] is a [`batch_core::Hub`]: give it to
//! [`BatchEndpoint::with_hub`](batch_core::BatchEndpoint::with_hub) and every change a
//! replica sees (a socket message, a batch op, a plain request) reaches the subscribed
//! sockets of every replica that shares the Redis channel, each exactly once.
//!
//! ```
//! use batch_core::{BatchEndpoint, Config, SocketConfig};
//! use batch_redis::RedisHub;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder().sockets(SocketConfig::default()).build()?;
//! // Connects in the background: the endpoint serves at once, Redis up or not.
//! let hub = RedisHub::new("redis://127.0.0.1:6379")?;
//! let endpoint = BatchEndpoint::with_hub(config, hub);
//! // Hand `endpoint` to an adapter: batch_axum::with_batch(router, endpoint), ...
//! # drop(endpoint);
//! # Ok(()) }
//! ```
//!
//! [`RedisStore`] is a [`batch_core::IdempotencyStore`]: give it to
//! [`ConfigBuilder::idempotency_store`](batch_core::ConfigBuilder::idempotency_store)
//! and a batch sent with an `Idempotency-Key` runs once across every replica that
//! shares the Redis, and a retry landing on any of them gets the stored answer.
//! While Redis is unreachable, keyed batches are refused with 503 (never run
//! unprotected); batches without a key do not need Redis.
//!
//! # How events travel
//!
//! - [`publish`](batch_core::Hub::publish) delivers the event to this replica's
//!   subscribers at once, then queues it (bounded, never waiting) for a background
//!   publisher, which sends it to the Redis channel tagged with this replica's id.
//! - A background subscriber receives every replica's events from the channel and
//!   delivers those of the other replicas, skipping its own: this replica's
//!   subscribers already have them.
//!
//! # When Redis is unreachable
//!
//! The replica keeps serving batches, sockets and its own local events. The fault
//! is logged through `tracing` (the Redis address, never the URL's credentials),
//! once when the link goes down and once when it is back; both tasks reconnect by
//! themselves with exponential backoff, and cross-replica events resume without a
//! restart. Redis pub/sub has no replay: events published while the link was down
//! are lost for the other replicas (this replica's subscribers still got them), and
//! so are events beyond the publishing queue when Redis cannot keep up.
//! [`RedisHub::dropped`] counts them.
//!
//! # Trust
//!
//! Whoever can publish on the channel can send change events to every replica's
//! subscribers: they are delivered as read (after checking that they are events),
//! without running anything in the application. Give the channel's Redis the access
//! control of any internal service (a password or ACL user in the URL, a private
//! network, `rediss://` where the client is built with TLS). The URL's credentials are
//! never logged, and neither `Debug` output nor errors repeat the URL.
//!
//! # Wire format
//!
//! One message per event on the channel (default [`DEFAULT_CHANNEL`]): the sending
//! replica's id (16 lower-case hex digits), a space, then the event's JSON
//! ([`batch_core::Event::json`]), exactly the message subscribers are sent.

// The README's example is compiled (and run, unless marked `no_run`) with the doc
// tests, so the page crates.io shows cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod backoff;
mod error;
mod history;
mod hub;
mod open;
mod publisher;
mod status;
mod store;
mod subscriber;
mod wire;

pub use error::RedisHubError;
pub use hub::{DEFAULT_CHANNEL, RedisHub, RedisHubBuilder};
pub use store::{DEFAULT_PREFIX, RedisStore, RedisStoreBuilder};
