//! Every scenario, over real HTTP, against each adapter's fixture server.
//!
//! Adding an adapter is one test: `conforms("name", fixture::name::start)` returned from a
//! `#[test] fn name() -> Result<(), Box<dyn Error>>`.

use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use batch_core::{Config, ServiceExecutor};
use conformance::fixture::{self, Server, Store};

/// Starts a server with `start` on a free port, runs every scenario against it,
/// prints the report and fails when any scenario failed.
fn conforms(
    adapter: &str,
    start: impl FnOnce(SocketAddr, Config) -> io::Result<Server>,
) -> Result<(), Box<dyn Error>> {
    let server = start(SocketAddr::from(([127, 0, 0, 1], 0)), Config::default())?;
    let report = conformance::run(&server.url(), adapter)?;
    println!("{report}");
    assert_eq!(report.failed(), 0, "{report}");
    Ok(())
}

#[test]
fn axum() -> Result<(), Box<dyn Error>> {
    conforms("axum", fixture::axum::start)
}

/// The axum fixture's `Router` as a plain tower service behind `ServiceExecutor`,
/// served by `serve_executor`: the engine with no framework adapter at all.
#[test]
fn tower() -> Result<(), Box<dyn Error>> {
    conforms("tower", |_addr, config| {
        let app = fixture::axum::app(Arc::new(Store::default()));
        let executor = ServiceExecutor::new(app, config.max_response_body());
        conformance::serve_executor(executor, config)
    })
}

#[test]
fn actix() -> Result<(), Box<dyn Error>> {
    conforms("actix", fixture::actix::start)
}

/// A debug build, like every test run: dispatching an op inside the outer route
/// would trip warp's nested-route assertion here.
#[test]
fn warp() -> Result<(), Box<dyn Error>> {
    conforms("warp", fixture::warp::start)
}
