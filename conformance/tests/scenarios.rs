//! Every scenario, over real HTTP, against each adapter's fixture server.
//!
//! Adding an adapter is one test: `conforms("name", fixture::name::start)` returned from a
//! `#[test] fn name() -> Result<(), Box<dyn Error>>`.

use std::error::Error;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use batch_core::{Config, Format, ServiceExecutor};
use fixture::{Server, Store};

/// The report, written to the process's stderr itself: libtest captures `println!`
/// of passing tests, and each adapter's `N passed, M failed` line belongs in every
/// run's output.
fn print(report: &conformance::Report) {
    let _ = writeln!(io::stderr(), "{report}");
}

/// Starts a server with `start` on a free port, runs every scenario against it,
/// prints the report and fails when any scenario failed. The scenarios that need
/// the Facebook format, off by default, run against a second server enabling it.
fn conforms(
    adapter: &str,
    start: impl Fn(SocketAddr, Config) -> io::Result<Server>,
) -> Result<(), Box<dyn Error>> {
    let free = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = start(free, Config::default())?;
    let report = conformance::run(&server.url(), adapter)?;
    print(&report);
    assert_eq!(report.failed(), 0, "{report}");
    let facebook = Config::builder().format(Format::Facebook, true).build()?;
    let server = start(free, facebook)?;
    let name = format!("{adapter} (facebook on)");
    let report = conformance::run_requiring(&server.url(), &name, "facebook")?;
    print(&report);
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
        fixture::serve_executor(executor, config)
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
