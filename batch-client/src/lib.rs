//! A client for HTTP batch endpoints (rust-batch's, or any that speaks its native
//! format or Microsoft Graph JSON batching).
//!
//! Build a list of ops of any length with [`Client::batch`], and send it:
//!
//! - **split** into batches within the server's advertised `max_ops` and
//!   `max_body_bytes` (asked once with `OPTIONS`, the defaults when the server does
//!   not say), every group of ops tied by `depends_on` kept in one batch, and an
//!   error before anything is sent when such a group alone is too large;
//! - **concurrently**, a bounded number of batches at once
//!   ([`ClientBuilder::concurrency`]);
//! - **retried**: ops answered 429 or 503 are sent again after their `retry-after`
//!   (or an exponential back-off with jitter), only idempotent ones unless asked,
//!   and a batch refused with 429 or 503 too ([`RetryPolicy`]);
//! - **safe to resend**: when the server advertises idempotency keys
//!   ([`Capabilities::idempotency`]), each batch carries a fresh `Idempotency-Key`,
//!   and a batch whose answer was lost on the way is sent again with the same key
//!   and bytes, so it runs at most once and the resend gets its answer
//!   ([`ClientBuilder::idempotency_keys`]);
//! - answered **in the caller's order** ([`Batch::send`]), or **as results arrive**
//!   ([`Batch::stream`]).
//!
//! # Example
//!
//! Against an axum app with the batch endpoint, on a free port:
//!
//! ```
//! use axum::{Json, Router, routing::get};
//! use batch_client::Client;
//! use serde_json::{Value, json};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = Router::new()
//!     .route("/items/{id}", get(|| async { Json(json!({"name": "pen"})) }).post(|| async { "created" }))
//!     .route("/health", get(|| async { Json(json!({"ok": true})) }));
//! let app = batch_axum::with_batch(app, batch_core::Config::builder().max_ops(2).build()?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}/batch", listener.local_addr()?);
//! tokio::spawn(async move { axum::serve(listener, app).await });
//!
//! let client = Client::new(&url)?;
//! let results = client
//!     .batch()
//!     .get("/items/1")
//!     .id("first")
//!     .get("/health")
//!     .depends_on("first")
//!     .post("/items/2", json!({"name": "ink"}))
//!     .get("/missing")
//!     .send()
//!     .await?; // two batches: the server takes two ops at a time
//!
//! assert_eq!(client.capabilities().await.max_ops, 2);
//! assert_eq!(results[0].json::<Value>()?, json!({"name": "pen"}));
//! assert_eq!(results[1].status, 200);
//! assert_eq!(results[2].text(), Some("created"));
//! assert_eq!(results[3].status, 404);
//! assert!(results[3].error().is_some());
//! # Ok(()) }
//! ```

mod batch;
mod client;
mod error;
mod key;
mod response;
mod retry;
mod run;
mod split;
mod wire;

pub use batch::Batch;
pub use batch_core::{Capabilities, Operation, ResultBody};
pub use client::{Client, ClientBuilder};
pub use error::{Error, Problem};
pub use response::OpResponse;
pub use retry::RetryPolicy;
pub use wire::WireFormat;
