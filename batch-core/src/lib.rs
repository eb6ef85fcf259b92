//! Framework-agnostic HTTP request batching.
//!
//! A client sends one request carrying many operations (method, url, headers,
//! body); the server runs each through its own routes and middleware, in-process,
//! and answers every result at once. This crate is the engine; `batch-axum`,
//! `batch-actix` and `batch-warp` plug it into a framework by implementing
//! [`Executor`].
//!
//! One batch flows through these modules, in order:
//!
//! 1. `codec` decodes the body in the [`Format`] its content type and shape name
//!    (native `{"ops": [...]}`, Graph/OData `{"requests": [...]}`, the aggregate
//!    array, `multipart/mixed`, Facebook's form when enabled) into the
//!    [`BatchRequest`] model;
//! 2. `validate` checks every op (`target` for urls, [`HeaderPolicy`] for
//!    headers, ids, limits) and prepares each op's request;
//! 3. `plan` resolves `depends_on` into a graph, refusing unknown ids and cycles;
//! 4. `engine` runs the ops on the batch's own task, concurrently up to the limit,
//!    with timeouts, 424s for dependents of failures and panics isolated per op;
//! 5. `codec` encodes the [`BatchResponse`], results in request order.
//!
//! A refused batch is answered with a [`Problem`] (RFC 9457) and nothing runs.
//!
//! # Example
//!
//! Any `tower::Service` over `http` types can serve the ops:
//!
//! ```
//! use batch_core::{BatchEndpoint, Config, ServiceExecutor};
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let app = tower::service_fn(|req: Request<Full<Bytes>>| async move {
//!     let status = if req.uri().path() == "/health" { StatusCode::OK } else { StatusCode::NOT_FOUND };
//!     let mut response = Response::new(Full::new(Bytes::from_static(br#"{"ok":true}"#)));
//!     *response.status_mut() = status;
//!     response.headers_mut().insert("content-type", "application/json".parse().unwrap());
//!     Ok::<_, std::convert::Infallible>(response)
//! });
//!
//! let endpoint = BatchEndpoint::new(Config::default());
//! let executor = ServiceExecutor::new(app, endpoint.config().max_response_body());
//! let batch = Request::post("/batch")
//!     .header("content-type", "application/json")
//!     .body(Bytes::from_static(br#"{"ops": [{"url": "/health"}, {"url": "/nope"}]}"#))
//!     .unwrap();
//!
//! let response = endpoint.handle(&executor, batch).await;
//! let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
//! assert_eq!(body["results"][0]["status"], 200);
//! assert_eq!(body["results"][0]["body"], serde_json::json!({"ok": true}));
//! assert_eq!(body["results"][1]["status"], 404);
//! # }
//! ```

mod codec;
mod config;
mod endpoint;
mod engine;
mod executor;
mod headers;
pub mod hooks;
mod model;
mod plan;
mod problem;
mod target;
mod validate;

pub use codec::Format;
pub use config::{Config, ConfigBuilder, ConfigError};
pub use endpoint::{BatchEndpoint, BatchOp};
pub use executor::{BoxError, ExecuteError, Executor, ServiceExecutor, collect_body};
pub use headers::HeaderPolicy;
pub use hooks::{BatchView, OpView, Refusal};
pub use model::{BatchRequest, BatchResponse, OnError, OpResult, Operation, ResultBody, Target};
pub use problem::Problem;
pub use target::TargetError;
