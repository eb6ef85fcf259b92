//! Conformance suite for batch endpoints: the fixture API once per framework,
//! scenarios as data, and a runner that checks any server over real HTTP.
//!
//! The scenarios live in `scenarios/**/*.json` (embedded in the crate) and are
//! described in `scenarios/README.md`: each is one behaviour a user relies on, as
//! HTTP requests and the responses they must get. The fixture API of
//! `spec/fixture-api.md` is in [`fixture`], written for each framework.
//!
//! # Checking a running server
//!
//! Serve the fixture API with a batch endpoint at `/batch`, then:
//!
//! ```text
//! cargo run -p conformance -- --url http://127.0.0.1:8080
//! cargo run -p conformance -- --url http://127.0.0.1:8080 --only headers.
//! cargo run -p conformance -- --help
//! ```
//!
//! It prints one line per failing scenario and `{name}: N passed, M failed`, and
//! exits non-zero when any scenario failed.
//!
//! # Checking a framework adapter
//!
//! Start its fixture server on a free port and run every scenario against it:
//!
//! ```
//! use conformance::fixture;
//!
//! let server = fixture::axum::start("127.0.0.1:0".parse()?, batch_core::Config::default())?;
//! let report = conformance::run_only(&server.url(), "axum", "options.")?;
//! println!("{report}"); // "axum: N passed, 0 failed"
//! assert_eq!(report.failed(), 0, "{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Checking an `Executor` without a framework
//!
//! [`serve_executor`] answers the batch path with [`batch_core::BatchEndpoint`] over
//! any [`batch_core::Executor`] and dispatches every other request to it directly,
//! so a custom executor is checked by the same scenarios:
//!
//! ```
//! use std::sync::Arc;
//! use batch_core::{Config, ServiceExecutor};
//! use conformance::fixture::{self, Store};
//!
//! let config = Config::default();
//! let app = fixture::axum::app(Arc::new(Store::default()));
//! let server = conformance::serve_executor(ServiceExecutor::new(app, config.max_response_body()), config)?;
//! let report = conformance::run_only(&server.url(), "tower", "execution.")?;
//! assert_eq!(report.failed(), 0, "{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod client;
pub mod fixture;
pub mod matcher;
pub mod runner;
pub mod scenario;
pub mod serve;

pub use runner::{Report, RunError, run, run_only, run_requiring};
pub use serve::{serve_executor, serve_service};
