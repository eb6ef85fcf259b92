//! Framework-agnostic HTTP request batching.
//!
//! A client sends one request carrying many operations (method, url, headers,
//! body); the server runs each through its own routes and middleware, in-process,
//! and answers every result at once. This crate is the engine; `batch-axum`,
//! `batch-actix` and `batch-warp` plug it into a framework by implementing
//! [`Executor`], and [`BatchLayer`] plugs it into any tower stack.
//!
//! # The pipeline
//!
//! One batch goes through these steps, each a public function, and through the
//! modules below in this order (each uses only those before it):
//!
//! | step | function | modules |
//! |---|---|---|
//! | read the body, refuse what is too large | [`BatchEndpoint::handle`] | `endpoint` |
//! | decode it in its [`Format`] into a [`BatchRequest`] | [`decode`] | `model`, `codec` |
//! | check each op and plan the dependencies, references and conditions | [`BatchEndpoint::run`] | `reference`, `target`, `headers`, `condition`, `links`, `validate`, `plan`, `hooks` |
//! | run the ops through an [`Executor`] into a [`BatchResponse`] | [`BatchEndpoint::run`] | `engine`, `executor` |
//! | encode the results in the same format | [`encode`] | `codec` |
//!
//! A batch sent with an `Idempotency-Key` is claimed in the [`IdempotencyStore`]
//! once its body is read, before it is decoded; its encoded answer is stored for
//! retries (module `idempotency`).
//!
//! [`Config`] holds the limits and policies every step reads; a refused batch is
//! answered with a [`Problem`] (RFC 9457) and nothing runs.
//!
//! # Example
//!
//! The steps one by one, with any `tower::Service` over `http` types serving the ops:
//!
//! ```
//! use batch_core::{BatchEndpoint, Config, ServiceExecutor};
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = tower::service_fn(|req: Request<Full<Bytes>>| async move {
//!     let status = if req.uri().path() == "/health" { StatusCode::OK } else { StatusCode::NOT_FOUND };
//!     Response::builder()
//!         .status(status)
//!         .header("content-type", "application/json")
//!         .body(Full::new(Bytes::from_static(br#"{"ok":true}"#)))
//! });
//! let endpoint = BatchEndpoint::new(Config::default());
//!
//! let (parts, ()) = Request::post("/batch").header("content-type", "application/json").body(())?.into_parts();
//! let body = Bytes::from_static(br#"{"ops": [{"url": "/health"}, {"url": "/nope"}]}"#);
//! let batch = batch_core::decode(&parts, &body, endpoint.config())?;
//! let response = endpoint.run(&ServiceExecutor::new(app), &parts, batch).await?;
//! assert_eq!(response.results[0].status, StatusCode::OK);
//! assert_eq!(response.results[1].status, StatusCode::NOT_FOUND);
//!
//! let answer = batch_core::encode(&response, response.format());
//! let json: serde_json::Value = serde_json::from_slice(answer.body())?;
//! assert_eq!(json["results"][0]["body"], serde_json::json!({"ok": true}));
//! # Ok(()) }
//! ```
//!
//! [`BatchEndpoint::handle`] does all of it for one `http::Request`, which is what
//! an adapter calls.

// The README's example is compiled (and run, unless marked `no_run`) with the doc
// tests, so the page crates.io shows cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod changes;
mod codec;
mod condition;
mod config;
mod deadline;
mod endpoint;
mod engine;
mod executor;
mod headers;
mod hooks;
mod idempotency;
mod ids;
mod in_flight;
mod layer;
mod links;
mod model;
mod observe;
mod plan;
mod problem;
mod reference;
mod socket;
mod stream;
mod target;
mod validate;

pub use changes::{
    Event, EventError, EventKind, Hub, LocalHub, Retention, Since, SinceFuture, Subscribers, Watch,
};
pub use codec::{decode, encode};
pub use config::{Config, ConfigBuilder, ConfigError, SocketConfig, SocketConfigBuilder};
pub use endpoint::BatchEndpoint;
pub use executor::{BoxError, ExecuteError, Executor, ServiceExecutor, collect_body};
pub use headers::HeaderPolicy;
pub use hooks::{BatchView, OpView, Refusal};
pub use idempotency::{
    Entry, Fingerprint, IdempotencyStore, MemoryStore, StoreError, StoreFuture, StoreKey,
    StoredAnswer,
};
pub use layer::{BatchLayer, BatchService, RequestBody, ResponseBody};
pub use model::{
    BatchOp, BatchRequest, BatchResponse, Capabilities, Format, OnError, OpResult, Operation,
    ResultBody, Text,
};
pub use observe::describe_metrics;
pub use problem::Problem;
pub use socket::{
    Action, Answer, ClientMessage, CloseFrame, Frame, MessageError, Outbox, Outgoing, Reply,
    Session, SocketAdmission,
};
pub use stream::BatchBody;
