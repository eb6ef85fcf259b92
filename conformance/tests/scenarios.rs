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
//! The socket scenarios run against the local servers that serve sockets, and
//! against `CONFORMANCE_URL` unless `CONFORMANCE_SKIP=sockets`. The revocation
//! scenarios (`"requires": "recheck"`) run against a third local server per socket
//! adapter, whose subscriptions are checked before every event, and against
//! `CONFORMANCE_URL` unless `CONFORMANCE_SKIP=recheck` (the demo with
//! `--socket-recheck 0` passes them).
//!
//! Adding an adapter is one line in `local_targets`.

mod common;

use std::error::Error;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use batch_core::{Config, Format, ServiceExecutor, SocketConfig};
use conformance::{Requirement, Selection};
use fixture::{Server, Store};

/// A server the scenarios run against, started only when its turn comes.
struct Target {
    /// The name its report prints.
    name: String,
    /// Which scenarios it runs.
    suite: Suite,
    serve: Box<dyn FnOnce() -> Result<Served, Box<dyn Error>>>,
}

/// The scenarios a target runs.
enum Suite {
    /// The ones the default configuration serves, as far as the selection keeps them.
    Default(Selection),
    /// Only the ones that need the Facebook format.
    Facebook,
    /// Only the ones that need subscriptions checked before every event.
    Recheck,
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
    fn remote(url: String, suite: Suite) -> Self {
        Self {
            name: url.clone(),
            suite,
            serve: Box::new(move || Ok(Served { url, _server: None })),
        }
    }

    /// A fixture server `start` starts on a free port of 127.0.0.1, with sockets on
    /// (whether it serves them or not) and, for the Facebook suite, that format.
    fn local(adapter: &str, start: Start, suite: Suite) -> Self {
        let name = match suite {
            Suite::Default(_) => adapter.to_owned(),
            Suite::Facebook => format!("{adapter} (facebook on)"),
            Suite::Recheck => format!("{adapter} (recheck 0)"),
        };
        let facebook = matches!(suite, Suite::Facebook);
        let recheck = matches!(suite, Suite::Recheck);
        let serve = move || {
            let mut sockets = SocketConfig::builder();
            if recheck {
                sockets = sockets.recheck(Some(Duration::ZERO));
            }
            let config = Config::builder()
                .sockets(sockets.build()?)
                .format(Format::Facebook, facebook)
                .build()?;
            let server = start(SocketAddr::from(([127, 0, 0, 1], 0)), config)?;
            Ok(Served {
                url: server.url(),
                _server: Some(server),
            })
        };
        Self {
            name,
            suite,
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

/// The servers named by `CONFORMANCE_URL` and `CONFORMANCE_FACEBOOK_URL` when set
/// (the first without what `CONFORMANCE_SKIP` names), else every adapter's fixture
/// server, each with its Facebook-enabled twin.
fn targets() -> Result<Vec<Target>, String> {
    let url = common::url_from_env("CONFORMANCE_URL")?;
    let facebook_url = common::url_from_env("CONFORMANCE_FACEBOOK_URL")?;
    let selection = common::skipped_from_env()?
        .into_iter()
        .fold(Selection::new(), Selection::skip);
    let Some(url) = url else {
        return match facebook_url {
            Some(_) => Err("CONFORMANCE_FACEBOOK_URL needs CONFORMANCE_URL: set both, \
                 or neither to check the local fixture servers"
                .to_owned()),
            None => Ok(local_targets(&selection)),
        };
    };
    let mut targets = vec![Target::remote(url, Suite::Default(selection))];
    match facebook_url {
        Some(url) => targets.push(Target::remote(url, Suite::Facebook)),
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

/// Every adapter's fixture server, and whether it serves sockets at `/socket`: the
/// socket scenarios run against those that do, on top of what `selection` skips.
fn local_targets(selection: &Selection) -> Vec<Target> {
    let adapters: [(&str, Start, bool); 5] = [
        ("axum", fixture::axum::start, true),
        ("actix", fixture::actix::start, true),
        // A debug build, like every test run: dispatching an op inside the outer
        // route would trip warp's nested-route assertion here.
        ("warp", fixture::warp::start, true),
        ("tower", fixture::tower::start, true),
        // The engine over an executor alone has no connection to upgrade.
        ("executor", executor, false),
    ];
    adapters
        .into_iter()
        .flat_map(|(adapter, start, serves_sockets)| {
            let mut targets = vec![Target::local(adapter, start, Suite::Facebook)];
            if serves_sockets {
                let default = selection.clone().skip(Requirement::Recheck);
                targets.push(Target::local(adapter, start, Suite::Default(default)));
                if !selection.skips(Requirement::Recheck) {
                    targets.push(Target::local(adapter, start, Suite::Recheck));
                }
            } else {
                let default = selection.clone().skip(Requirement::Sockets);
                targets.push(Target::local(adapter, start, Suite::Default(default)));
            }
            targets
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
        let report = match &target.suite {
            Suite::Default(selection) => conformance::run_selected(&served.url, &name, selection),
            Suite::Facebook => conformance::run_requiring(&served.url, &name, "facebook"),
            Suite::Recheck => {
                conformance::run_requiring_only(&served.url, &name, Requirement::Recheck)
            }
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
