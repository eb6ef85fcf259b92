//! End-to-end benchmark of the batch endpoint: what one batch saves a client against
//! sequential HTTP/1.1 and multiplexed HTTP/2 requests, throughput under concurrent
//! clients, makespan against the critical path, and the server's memory per payload,
//! on each adapter's fixture server over real sockets on 127.0.0.1.
//!
//! ```text
//! cargo run --release -p bench                       # every framework, full run
//! cargo run --release -p bench -- --quick            # a few iterations (CI smoke)
//! cargo run --release -p bench -- --framework axum --iterations 50
//! ```
//!
//! Every figure is printed next to a baseline measured in the same run, with their
//! ratio: absolute times on a shared 2-vCPU VM move by tens of percent between runs,
//! ratios much less. Times are medians over the iterations, after a warm-up.

mod client;
mod measure;
mod rss;
mod table;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use batch_core::Config;
use fixture::Server;
use thiserror::Error;

const USAGE: &str = "\
usage: bench [--quick] [--framework NAME] [--iterations N]

  --quick            a few iterations and short runs: checks that everything works (CI)
  --framework NAME   axum, actix or warp (default: all three)
  --iterations N     timed repetitions of each latency figure (default 30)
  -h, --help         this text";

/// Why the bench could not produce its table.
#[derive(Debug, Error)]
pub(crate) enum BenchError {
    /// A socket, process or file operation failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The HTTP client failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// A request could not be built.
    #[error("building a request: {0}")]
    Request(#[from] http::Error),
    /// The server's configuration was refused.
    #[error("configuration: {0}")]
    Config(#[from] batch_core::ConfigError),
    /// The server answered something the bench did not expect; its figures would
    /// be meaningless.
    #[error("unexpected answer to {what}: {detail}")]
    Unexpected {
        /// The request.
        what: String,
        /// What was wrong.
        detail: String,
    },
}

pub(crate) use fixture::Framework;

/// Starts `framework`'s fixture server on a free port with the bench's configuration.
pub(crate) fn start(framework: Framework) -> Result<Server, BenchError> {
    framework
        .start(SocketAddr::from(([127, 0, 0, 1], 0)), config()?)
        .map_err(|err| BenchError::Io(format!("starting {}", framework.name()), err))
}

/// The defaults, except room for the 20-op makespan batch to run at once and for
/// 50 ops of 100 KiB: limits the default configuration would rightly refuse.
fn config() -> Result<Config, BenchError> {
    Ok(Config::builder()
        .max_concurrency(32)
        .max_body(8 << 20)
        .build()?)
}

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Timed repetitions of each latency figure.
    pub(crate) iterations: usize,
    /// Untimed repetitions first.
    pub(crate) warmup: usize,
    /// How long each throughput run lasts.
    pub(crate) throughput_for: Duration,
    /// Batches of 50 × 100 KiB sent while the server's RSS is watched.
    pub(crate) rss_batches: usize,
}

#[derive(Debug)]
struct Args {
    plan: Plan,
    frameworks: Vec<Framework>,
    /// Internal: serve this framework's fixture for the RSS measurement.
    serve: Option<Framework>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        plan: Plan {
            iterations: 30,
            warmup: 5,
            throughput_for: Duration::from_secs(2),
            rss_batches: 5,
        },
        frameworks: Framework::ALL.to_vec(),
        serve: None,
    };
    let mut iterations = None;
    let framework = |name: String| {
        Framework::from_name(&name).ok_or_else(|| format!("unknown framework {name:?}"))
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => {
                parsed.plan = Plan {
                    iterations: 3,
                    warmup: 1,
                    throughput_for: Duration::from_millis(200),
                    rss_batches: 1,
                };
            }
            "--framework" => parsed.frameworks = vec![framework(value("--framework")?)?],
            "--iterations" => {
                let text = value("--iterations")?;
                let n = text
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--iterations wants a positive number; got {text:?}"))?;
                iterations = Some(n);
            }
            rss::SERVE_FLAG => parsed.serve = Some(framework(value(rss::SERVE_FLAG)?)?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if let Some(n) = iterations {
        parsed.plan.iterations = n;
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("bench: {message}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match args.serve {
        Some(framework) => rss::serve(framework),
        None => run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), BenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| BenchError::Io("starting the client runtime".into(), err))?;
    println!("{}", table::machine());
    println!(
        "plan: {} iterations after {} warm-up, throughput runs of {:?}, {} RSS batches; \
         client on one current-thread runtime, servers as the fixtures start them\n",
        args.plan.iterations, args.plan.warmup, args.plan.throughput_for, args.plan.rss_batches
    );
    let mut rows = Vec::new();
    for &framework in &args.frameworks {
        eprintln!("measuring {} ...", framework.name());
        let server = start(framework)?;
        let addr = server.addr();
        rows.extend(runtime.block_on(measure::all(framework, addr, args.plan))?);
        drop(server);
        rows.push(rss::measure(framework, &runtime, args.plan)?);
    }
    table::print(&rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn quick_keeps_an_explicit_iteration_count() {
        let args = parse(&["--iterations", "7", "--quick", "--framework", "warp"]).unwrap();
        assert_eq!(args.plan.iterations, 7);
        assert_eq!(args.plan.rss_batches, 1);
        assert_eq!(args.frameworks, [Framework::Warp]);
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        assert!(
            parse(&["--iterations", "0"])
                .unwrap_err()
                .contains("positive")
        );
        assert!(
            parse(&["--framework", "rocket"])
                .unwrap_err()
                .contains("unknown framework")
        );
        assert!(parse(&["--frob"]).unwrap_err().contains("unknown argument"));
    }
}
