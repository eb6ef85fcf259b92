//! Every scenario, over real HTTP: against the server `CONFORMANCE_URL` names when it
//! is set, and only that one; else against each adapter's local fixture server.
//!
//! ```text
//! cargo test -p conformance                                        # local fixture servers
//! CONFORMANCE_URL=http://127.0.0.1:8080 cargo test -p conformance  # that server only
//! ```
//!
//! The scenarios that need the Facebook format, which the default configuration
//! switches off, run against a second server that enables it: locally one per
//! adapter, and `CONFORMANCE_FACEBOOK_URL` when set (without it they are left out).
//!
//! Adding an adapter is one line in `local_targets`.

mod common;

use std::error::Error;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use batch_core::{Config, Format, ServiceExecutor};
use fixture::{Server, Store};

/// A server the scenarios run against, started only when its turn comes.
struct Target {
    /// The name its report prints.
    name: String,
    /// Runs the scenarios that need the Facebook format (only those) rather than the
    /// ones the default configuration serves.
    facebook: bool,
    serve: Box<dyn FnOnce() -> Result<Served, Box<dyn Error>>>,
}

/// Where to send the scenarios, and the local server behind the url, if any, which
/// stops when this is dropped.
struct Served {
    url: String,
    _server: Option<Server>,
}

type Start = fn(SocketAddr, Config) -> io::Result<Server>;

impl Target {
    /// The server at `url`, reported under its url.
    fn remote(url: String, facebook: bool) -> Self {
        Self {
            name: url.clone(),
            facebook,
            serve: Box::new(move || Ok(Served { url, _server: None })),
        }
    }

    /// A fixture server `start` starts on a free port of 127.0.0.1.
    fn local(adapter: &str, start: Start, facebook: bool) -> Self {
        let name = if facebook {
            format!("{adapter} (facebook on)")
        } else {
            adapter.to_owned()
        };
        let serve = move || {
            let config = if facebook {
                Config::builder().format(Format::Facebook, true).build()?
            } else {
                Config::default()
            };
            let server = start(SocketAddr::from(([127, 0, 0, 1], 0)), config)?;
            Ok(Served {
                url: server.url(),
                _server: Some(server),
            })
        };
        Self {
            name,
            facebook,
            serve: Box::new(serve),
        }
    }
}

/// The axum fixture's `Router` as a plain tower service behind `ServiceExecutor`,
/// served by `serve_executor`: the engine over an [`batch_core::Executor`] alone,
/// as a framework with no tower support would use it.
fn executor(_addr: SocketAddr, config: Config) -> io::Result<Server> {
    let app = fixture::axum::app(Arc::new(Store::default()));
    fixture::serve_executor(ServiceExecutor::new(app), config)
}

/// The servers named by `CONFORMANCE_URL` and `CONFORMANCE_FACEBOOK_URL` when set,
/// else every adapter's fixture server, each with its Facebook-enabled twin.
fn targets() -> Result<Vec<Target>, String> {
    let url = common::url_from_env("CONFORMANCE_URL")?;
    let facebook_url = common::url_from_env("CONFORMANCE_FACEBOOK_URL")?;
    let Some(url) = url else {
        return match facebook_url {
            Some(_) => Err("CONFORMANCE_FACEBOOK_URL needs CONFORMANCE_URL: set both, \
                 or neither to check the local fixture servers"
                .to_owned()),
            None => Ok(local_targets()),
        };
    };
    let mut targets = vec![Target::remote(url, false)];
    match facebook_url {
        Some(url) => targets.push(Target::remote(url, true)),
        None => {
            let _ = writeln!(
                io::stderr(),
                "CONFORMANCE_FACEBOOK_URL is not set: \
                 the scenarios that need the Facebook format are left out"
            );
        }
    }
    Ok(targets)
}

fn local_targets() -> Vec<Target> {
    let adapters: [(&str, Start); 5] = [
        ("axum", fixture::axum::start),
        ("actix", fixture::actix::start),
        // A debug build, like every test run: dispatching an op inside the outer
        // route would trip warp's nested-route assertion here.
        ("warp", fixture::warp::start),
        ("tower", fixture::tower::start),
        ("executor", executor),
    ];
    adapters
        .into_iter()
        .flat_map(|(adapter, start)| {
            [false, true].map(|facebook| Target::local(adapter, start, facebook))
        })
        .collect()
}

/// Runs each target's scenarios, one target after another, and prints every report
/// to the process's stderr itself: libtest captures `println!` of passing tests, and
/// each `N passed, M failed` line belongs in every run's output.
#[test]
fn every_scenario_passes() {
    let targets = targets().unwrap_or_else(|why| panic!("{why}"));
    let mut failing = Vec::new();
    for target in targets {
        let name = target.name;
        let served = (target.serve)().unwrap_or_else(|err| panic!("{name}: cannot start: {err}"));
        let report = if target.facebook {
            conformance::run_requiring(&served.url, &name, "facebook")
        } else {
            conformance::run(&served.url, &name)
        }
        .unwrap_or_else(|err| panic!("{name}: {err}"));
        let _ = writeln!(io::stderr(), "{report}");
        if report.failed() > 0 {
            failing.push(name);
        }
    }
    assert!(
        failing.is_empty(),
        "scenarios failed on {} (the reports above say which and why)",
        failing.join(", ")
    );
}
