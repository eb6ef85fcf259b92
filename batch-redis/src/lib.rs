//! Change events of real-time resources across replicas, through Redis streams,
//! with the history clients resume from; idempotency keys shared by replicas.
//!
//! [`RedisHub`] is a [`batch_core::Hub`]: give it to
//! [`BatchEndpoint::with_hub`](batch_core::BatchEndpoint::with_hub) and every change a
//! replica sees (a socket message, a batch op, a plain request) reaches the subscribed
//! sockets of every replica that shares the hub's Redis stream, each exactly once, in
//! the same order and with the same `seq` on every replica; a client that lost its
//! socket resumes from its last `seq` on whichever replica it reaches.
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
//! - [`publish`](batch_core::Hub::publish) queues the event (bounded, never
//!   waiting) for a background publisher, which runs one Lua script per event in
//!   Redis: it gives the event the next seq of the history's run and appends it to
//!   the shared stream and to the history of its URI and of its list.
//! - A background reader on every replica reads the shared stream (`XREAD BLOCK`)
//!   and delivers each event, this replica's own too, to its subscribers, in the
//!   order of the seqs: the same order, and the same cursors, on every replica.
//! - A resume ([`Hub::since`](batch_core::Hub::since)) reads the URI's history in
//!   Redis, up to the last event this replica delivered (later ones reach the
//!   subscription live), or answers a fresh state when Redis no longer holds every
//!   event after the cursor.
//!
//! # When Redis is unreachable
//!
//! The replica keeps serving batches, sockets and its own local events: an event
//! Redis surely never got is delivered to this replica's subscribers at once, with
//! a cursor of this replica's own (a resume from it gets a fresh state). The fault
//! is logged through `tracing` (the Redis address, never the URL's credentials),
//! once when the link goes down and once when it is back; both tasks reconnect by
//! themselves with exponential backoff, and the reader reads on from the last event
//! it delivered, so an outage of the reader alone loses nothing. Events Redis never
//! recorded are lost for the other replicas, and so are events beyond the
//! publishing queue when Redis cannot keep up: [`RedisHub::dropped`] counts them.
//! Resumes get a fresh state while Redis does not answer. When Redis comes back
//! without its data (a restart without persistence), the history starts a new run:
//! cursors of the old one get a fresh state, never a gap.
//!
//! # Trust
//!
//! Whoever can write the hub's keys can send change events to every replica's
//! subscribers: they are delivered as read (after checking that they are events),
//! without running anything in the application. Give the hub's Redis the access
//! control of any internal service (a password or ACL user in the URL, a private
//! network, `rediss://` where the client is built with TLS). The URL's credentials are
//! never logged, and neither `Debug` output nor errors repeat the URL.
//!
//! # Wire format
//!
//! For the hub's name `N` (default [`DEFAULT_CHANNEL`]): the stream `N`, one entry
//! per event, id `<seq>-0`, fields `j` (the event's JSON,
//! [`batch_core::Event::json`], exactly the message subscribers are sent, before its
//! `seq`), `e` (the run), `t` (Redis's time, ms) and `r` (the replica's id); the
//! stream `N:uri:<URI>` per resource and list URI, same ids, field `j`; the hash
//! `N:meta` (`epoch`, `n`, `t0`). A client's cursor is `<epoch>-<seq>`.

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
