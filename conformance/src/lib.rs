//! Conformance suite for batch endpoints: scenarios as data, and a runner that
//! checks any server over real HTTP.
//!
//! The scenarios live in `scenarios/**/*.json` (embedded in the crate) and are
//! described in `scenarios/README.md`: each is one behaviour a user relies on, as
//! HTTP requests and the responses they must get. The server under test serves the
//! fixture API of `docs/fixture-api.md` with a batch endpoint at `/batch`. This crate
//! builds no web framework: the workspace's own fixture servers, one per framework,
//! are in the `fixture` crate.
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
//! # Checking a server from a test
//!
//! Start the server on a free port, then run every scenario against it:
//!
//! ```no_run
//! # fn start_my_server() -> std::io::Result<String> { Ok("http://127.0.0.1:8080".into()) }
//! let url = start_my_server()?; // such as "http://127.0.0.1:40123"
//! let report = conformance::run(&url, "my server")?;
//! println!("{report}"); // "my server: N passed, 0 failed"
//! assert_eq!(report.failed(), 0, "{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod client;
pub mod matcher;
pub mod runner;
pub mod scenario;

pub use runner::{Report, RunError, run, run_only, run_requiring};
