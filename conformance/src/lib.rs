//! Conformance suite for batch endpoints: scenarios as data, and a runner that
//! checks any server over real HTTP and WebSocket.
//!
//! The scenarios live in `scenarios/**/*.json` (embedded in the crate) and are
//! described in `scenarios/README.md`: each is one behaviour a user relies on, as
//! HTTP requests and the responses they must get, or as messages sent on sockets
//! and the ones that must (or must not) arrive. The server under test serves the
//! fixture API of `docs/fixture-api.md` with a batch endpoint at `/batch`, in its
//! default configuration, and sockets at `/socket` with the default socket
//! configuration. This crate builds no web framework: the workspace's own fixture
//! servers, one per framework, are in the `fixture` crate, a dev-dependency here.
//!
//! A server is checked in one of three ways.
//!
//! # From the command line
//!
//! ```text
//! cargo run -p conformance -- --url http://127.0.0.1:8080
//! cargo run -p conformance -- --url http://127.0.0.1:8080 --only headers.
//! cargo run -p conformance -- --url http://127.0.0.1:8080 --skip sockets
//! cargo run -p conformance -- --help
//! ```
//!
//! It prints one line per failing scenario and `{name}: N passed, M failed`, and
//! exits non-zero when any scenario failed.
//!
//! # With this crate's own tests
//!
//! ```text
//! CONFORMANCE_URL=http://127.0.0.1:8080 cargo test -p conformance
//! CONFORMANCE_URL=http://127.0.0.1:8080 CONFORMANCE_FACEBOOK_URL=http://127.0.0.1:8081 \
//!     cargo test -p conformance
//! CONFORMANCE_URL=http://127.0.0.1:8080 CONFORMANCE_SKIP=sockets cargo test -p conformance
//! ```
//!
//! `tests/scenarios.rs` runs every scenario the default configuration serves against
//! the server `CONFORMANCE_URL` names, and only that server: no test of this crate
//! starts a fixture server then. It prints the report, ending in
//! `http://127.0.0.1:8080: N passed, M failed`, and fails when M is not 0. The
//! scenarios that need the Facebook format, which the default configuration switches
//! off, run only when `CONFORMANCE_FACEBOOK_URL` names a second server that enables
//! it. `CONFORMANCE_SKIP` leaves out, on the `CONFORMANCE_URL` server, the scenarios
//! that need what it names. An unset `CONFORMANCE_URL` checks the workspace's
//! fixture servers instead (the socket scenarios only on those that serve sockets);
//! one that is not a base url such as `http://127.0.0.1:8080` fails the run.
//!
//! # From your own test
//!
//! Add `conformance` as a dev-dependency, start your server on a free port, and run
//! every scenario against it:
//!
//! ```no_run
//! # fn start_my_server() -> std::io::Result<String> { Ok("http://127.0.0.1:8080".into()) }
//! let url = start_my_server()?; // such as "http://127.0.0.1:40123"
//! let report = conformance::run(&url, "my server")?;
//! println!("{report}"); // "my server: N passed, 0 failed"
//! assert_eq!(report.failed(), 0, "{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Servers without sockets
//!
//! The socket scenarios (files that say `"requires": "sockets"`) run by default,
//! over `ws://` at the base url's host and port. For a server that does not serve
//! sockets, leave them out: `--skip sockets` on the command line,
//! `CONFORMANCE_SKIP=sockets` for this crate's tests (a comma-separated list of
//! [`Requirement`] names; an unknown name fails the run), or
//! `Selection::new().skip(Requirement::Sockets)` with [`run_selected`] from Rust
//! ([`Selection::skip`]).
//!
//! The revocation scenarios (`"requires": "recheck"`) need a server that checks a
//! subscription again before every event (`SocketConfig::recheck` zero, the demo's
//! `--socket-recheck 0`); they run by default too, and `--skip recheck` (or
//! skipping `sockets`) leaves them out. [`run_requiring_only`] runs only them.
//!
//! [`run_only`] runs the scenarios whose name contains a text, [`run_selected`] those
//! a [`Selection`] keeps, and [`run_requiring`] those that need the Facebook format,
//! against a server configured with it.

pub mod client;
pub mod matcher;
pub mod runner;
pub mod scenario;
pub mod socket;

pub use runner::{
    Report, RunError, Selection, run, run_only, run_requiring, run_requiring_only, run_selected,
};
pub use scenario::Requirement;
