//! End-to-end benchmark of the batch endpoint: what one batch saves a client against
//! sequential HTTP/1.1 and multiplexed HTTP/2 requests, throughput under concurrent
//! clients, makespan against the critical path, and the server's memory per payload;
//! what an op costs the server, in-process (the framework's share and the engine's)
//! and in CPU time per op, and per request (a GET, a batch's body to an ordinary
//! route, batches of 1 and 10: what HTTP charges a request for its body, told from
//! what a batch adds); and of real-time resources: a change fanned out to 1 to
//! 1,000 subscribed sockets, pipelined socket ops against a batch and sequential
//! requests, and the memory of an idle socket; what an `Idempotency-Key` adds to a batch, with the
//! in-memory store and with Redis (when `redis-server` is installed); and how long
//! a client that missed 1,000 events takes to resume, with the local hub and the
//! Redis hub. On each adapter's fixture server over real sockets on 127.0.0.1.
//!
//! ```text
//! cargo run --release -p bench                       # every framework, full run
//! cargo run --release -p bench -- --quick            # a few iterations (CI smoke)
//! cargo run --release -p bench -- --framework axum --iterations 50
//! cargo run --release -p bench -- --only realtime    # the socket figures alone
//! cargo run --release -p bench -- --only recheck     # what rechecking subscriptions costs
//! ```
//!
//! Every figure is printed next to a baseline measured in the same run, with their
//! ratio: absolute times on a shared 2-vCPU VM move by tens of percent between runs,
//! ratios much less. Times are medians over the iterations, after a warm-up.

mod child;
mod client;
mod cost;
mod cpu;
mod fanout;
mod idempotency;
mod measure;
mod pipeline;
mod redis;
mod resume;
mod rss;
mod streaming;
mod table;
mod ws;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use batch_core::{Config, ConfigBuilder, SocketConfig};
use fixture::Server;
use thiserror::Error;

const USAGE: &str = "\
usage: bench [--quick] [--framework NAME] [--iterations N] [--only PART]
             [--server-cpus LIST]

  --quick            a few iterations, short runs, few sockets: checks that
                     everything works (CI)
  --framework NAME   axum, actix, warp or tower (default: all four)
  --iterations N     timed repetitions of each latency figure (default 30)
  --only PART        batch (the batch figures), cost (what an op costs the server:
                     in-process and in CPU time, per op and per request; part of
                     batch), idempotency (what an Idempotency-Key adds, part of
                     batch), streaming (streamed against buffered answers: time
                     to the first result, peak memory; part of batch), realtime
                     (the socket figures), resume (a resume after 1,000 missed
                     events, local and Redis hub) or recheck (what rechecking
                     subscriptions costs a fan-out to the largest subscriber
                     count; only with --only)
  --server-cpus LIST run the servers in child processes on these CPUs (taskset -c
                     LIST, e.g. 0 or 0,1); run the bench itself under taskset too
                     to keep the client off them
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
    /// A WebSocket failed.
    #[error("WebSocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
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

/// What a server is started for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setup {
    /// The batch figures: sockets off, as by default.
    Batches,
    /// The real-time figures: sockets on.
    Sockets,
    /// The streaming memory figures: the engine over an executor whose every op
    /// answers 100 KiB, for batches of 1,000 ops.
    Payload,
    /// What revocation costs: sockets on, subscriptions checked again once their
    /// last check is older than this (`None`: never).
    Recheck(Option<Duration>),
}

/// Starts `framework`'s fixture server on a free port with the bench's configuration.
pub(crate) fn start(framework: Framework, setup: Setup) -> Result<Server, BenchError> {
    framework
        .start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            config_builder(setup)?.build()?,
        )
        .map_err(|err| BenchError::Io(format!("starting {}", framework.name()), err))
}

/// The defaults, except room for the 20-op makespan batch to run at once and for
/// 50 ops of 100 KiB: limits the default configuration would rightly refuse. With
/// sockets, their defaults too, except room for more open sockets than the 10,000
/// the memory figure opens.
pub(crate) fn config_builder(setup: Setup) -> Result<ConfigBuilder, BenchError> {
    let builder = Config::builder().max_concurrency(32).max_body(8 << 20);
    Ok(match setup {
        Setup::Batches | Setup::Payload => builder,
        Setup::Sockets => builder.sockets(SocketConfig::builder().max_sockets(20_000).build()?),
        Setup::Recheck(interval) => builder.sockets(
            SocketConfig::builder()
                .max_sockets(20_000)
                .recheck(interval)
                .build()?,
        ),
    })
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
    /// Rounds of the in-process figures (50 direct requests and a batch of 50 each).
    pub(crate) in_process_rounds: usize,
    /// Rounds of the server CPU figures (50 single requests and a batch of 50 each).
    pub(crate) cpu_rounds: usize,
    /// Batches of 50 × 100 KiB sent while the server's RSS is watched.
    pub(crate) rss_batches: usize,
    /// Subscriber counts of the fan-out figures, ascending.
    pub(crate) subscribers: &'static [usize],
    /// Changes per burst, and bursts timed, for the events per second.
    pub(crate) burst: usize,
    pub(crate) bursts: usize,
    /// Idle sockets open when the server's RSS is read, ascending.
    pub(crate) idle_sockets: &'static [usize],
    /// The CPUs the servers in child processes run on, if not every one.
    pub(crate) server_cpus: Option<Cpus>,
}

/// A set of CPUs, by number (0 to 63), as `taskset -c` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cpus(u64);

impl Cpus {
    /// Reads `0`, `0,1`: CPU numbers separated by commas.
    fn parse(list: &str) -> Option<Self> {
        let mut mask = 0u64;
        for cpu in list.split(',') {
            let cpu: u32 = cpu.trim().parse().ok().filter(|&cpu| cpu < 64)?;
            mask |= 1 << cpu;
        }
        Some(Self(mask))
    }
}

impl std::fmt::Display for Cpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cpus: Vec<String> = (0..64)
            .filter(|cpu| self.0 & (1 << cpu) != 0)
            .map(|cpu: u32| cpu.to_string())
            .collect();
        f.write_str(&cpus.join(","))
    }
}

/// Which figures to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts {
    batch: bool,
    /// What an op costs the server: in-process, and its CPU time (part of batch).
    cost: bool,
    /// The idempotency-key figures (part of the batch figures).
    idempotency: bool,
    /// Streamed against buffered answers (part of the batch figures).
    streaming: bool,
    realtime: bool,
    /// The resume figures: 1,000 missed events, local and Redis hub.
    resume: bool,
    /// What rechecking subscriptions costs a fan-out (not part of the full run).
    recheck: bool,
}

impl Parts {
    /// No part: what `--only` adds its part to.
    const NONE: Self = Self {
        batch: false,
        cost: false,
        idempotency: false,
        streaming: false,
        realtime: false,
        resume: false,
        recheck: false,
    };
}

#[derive(Debug)]
struct Args {
    plan: Plan,
    frameworks: Vec<Framework>,
    parts: Parts,
    /// Internal: serve this framework's fixture for the RSS measurement.
    serve: Option<(Framework, Setup)>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        plan: Plan {
            iterations: 30,
            warmup: 5,
            throughput_for: Duration::from_secs(2),
            in_process_rounds: 1000,
            cpu_rounds: 100,
            rss_batches: 5,
            subscribers: &[1, 100, 1000],
            burst: 50,
            bursts: 5,
            idle_sockets: &[1000, 10_000],
            server_cpus: None,
        },
        frameworks: Framework::ALL.to_vec(),
        parts: Parts {
            batch: true,
            cost: true,
            idempotency: true,
            streaming: true,
            realtime: true,
            resume: true,
            recheck: false,
        },
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
                    in_process_rounds: 5,
                    cpu_rounds: 2,
                    rss_batches: 1,
                    subscribers: &[1, 10],
                    burst: 5,
                    bursts: 1,
                    idle_sockets: &[10],
                    server_cpus: parsed.plan.server_cpus,
                };
            }
            "--framework" => parsed.frameworks = vec![framework(value("--framework")?)?],
            "--server-cpus" => {
                let list = value("--server-cpus")?;
                parsed.plan.server_cpus = Some(Cpus::parse(&list).ok_or_else(|| {
                    format!("--server-cpus wants CPU numbers like 0,1; got {list:?}")
                })?);
            }
            "--only" => {
                parsed.parts = match value("--only")?.as_str() {
                    "batch" => Parts {
                        batch: true,
                        cost: true,
                        idempotency: true,
                        streaming: true,
                        ..Parts::NONE
                    },
                    "cost" => Parts {
                        cost: true,
                        ..Parts::NONE
                    },
                    "idempotency" => Parts {
                        idempotency: true,
                        ..Parts::NONE
                    },
                    "streaming" => Parts {
                        streaming: true,
                        ..Parts::NONE
                    },
                    "realtime" => Parts {
                        realtime: true,
                        ..Parts::NONE
                    },
                    "resume" => Parts {
                        resume: true,
                        ..Parts::NONE
                    },
                    "recheck" => Parts {
                        recheck: true,
                        ..Parts::NONE
                    },
                    other => {
                        return Err(format!(
                            "--only wants batch, cost, idempotency, streaming, realtime, resume or recheck; got {other:?}"
                        ));
                    }
                };
            }
            "--iterations" => {
                let text = value("--iterations")?;
                let n = text
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--iterations wants a positive number; got {text:?}"))?;
                iterations = Some(n);
            }
            child::SERVE_FLAG => {
                let served = value(child::SERVE_FLAG)?;
                parsed.serve = Some(
                    child::parse_serve(&served)
                        .ok_or_else(|| format!("unknown framework {served:?}"))?,
                );
            }
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
        Some((framework, setup)) => child::serve(framework, setup),
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
    println!("at the start, {}", table::load_average());
    let machine = cpu::Machine::now();
    let plan = args.plan;
    println!(
        "plan: {} iterations after {} warm-up, throughput runs of {:?}, {} RSS batches, \
         fan-out to {:?} subscribers with bursts of {} changes, {:?} idle sockets; \
         client on one current-thread runtime, servers as the fixtures start them \
         (batch figures in this process, socket figures in a child process{})\n",
        plan.iterations,
        plan.warmup,
        plan.throughput_for,
        plan.rss_batches,
        plan.subscribers,
        plan.burst,
        plan.idle_sockets,
        plan.server_cpus
            .map_or(String::new(), |cpus| format!(" on CPUs {cpus}"))
    );
    let mut rows = Vec::new();
    let mut costs = Vec::new();
    let mut fan_outs = Vec::new();
    let mut rechecks = Vec::new();
    // One Redis for every part with a Redis row.
    let redis = (args.parts.idempotency || args.parts.resume)
        .then(redis::Redis::start)
        .flatten();
    for &framework in &args.frameworks {
        eprintln!("measuring {} ...", framework.name());
        if args.parts.batch || args.parts.idempotency || args.parts.streaming {
            let server = start(framework, Setup::Batches)?;
            if args.parts.batch {
                rows.extend(runtime.block_on(measure::all(framework, server.addr(), plan))?);
            }
            if args.parts.idempotency {
                let keyed = idempotency::all(framework, server.addr(), redis.as_ref(), plan);
                rows.extend(runtime.block_on(keyed)?);
            }
            if args.parts.streaming {
                let first = streaming::first_result(framework, server.addr(), plan);
                rows.extend(runtime.block_on(first)?);
            }
            drop(server);
        }
        if args.parts.batch {
            rows.push(rss::measure(framework, &runtime, plan)?);
        }
        if args.parts.cost {
            costs.push(cost::measure(framework, &runtime, plan)?);
        }
        if args.parts.realtime {
            // In a child process, so that its CPU time is told from the client's.
            let (served, addr) = child::Served::start(framework, Setup::Sockets, plan.server_cpus)?;
            rows.extend(runtime.block_on(pipeline::all(framework, addr, plan))?);
            fan_outs.extend(runtime.block_on(fanout::all(framework, &served, addr, plan))?);
            drop(served);
            eprintln!("  idle sockets");
            rows.extend(rss::idle_sockets(framework, &runtime, plan)?);
        }
        if args.parts.resume {
            rows.extend(runtime.block_on(resume::all(framework, redis.as_ref(), plan))?);
        }
        if args.parts.recheck {
            rechecks.extend(fanout::rechecked(framework, &runtime, plan)?);
        }
    }
    if args.parts.streaming {
        eprintln!("measuring streamed memory ...");
        rows.extend(streaming::memory(&runtime, plan)?);
    }
    if !rows.is_empty() {
        table::print(&rows);
    }
    if !costs.is_empty() {
        println!();
        table::print_costs(&costs);
        println!();
        table::print_requests(&costs);
    }
    if !fan_outs.is_empty() {
        println!();
        table::print_fan_out(&fan_outs);
    }
    if !rechecks.is_empty() {
        println!();
        table::print_rechecks(&rechecks);
    }
    println!(
        "\nat the end, {}; time stolen by the host during the run: {:.1}%",
        table::load_average(),
        cpu::Machine::now().steal_since(machine)
    );
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
        assert!(args.parts.batch && args.parts.realtime);
    }

    #[test]
    fn only_one_part_and_the_childs_setup() {
        let args = parse(&["--only", "realtime"]).unwrap();
        assert!(!args.parts.batch && !args.parts.idempotency && args.parts.realtime);
        let args = parse(&["--only", "idempotency"]).unwrap();
        assert!(!args.parts.batch && args.parts.idempotency && !args.parts.realtime);
        let args = parse(&["--only", "cost"]).unwrap();
        assert!(!args.parts.batch && args.parts.cost && !args.parts.idempotency);
        let batch = parse(&["--only", "batch"]).unwrap().parts;
        assert!(batch.idempotency && batch.cost && batch.streaming);
        assert!(!batch.realtime && !batch.resume);
        let args = parse(&["--only", "resume"]).unwrap();
        assert!(args.parts.resume && !args.parts.batch && !args.parts.realtime);
        let streaming = parse(&["--only", "streaming"]).unwrap().parts;
        assert!(streaming.streaming && !streaming.batch && !streaming.realtime);
        let args = parse(&[child::SERVE_FLAG, "tower+sockets"]).unwrap();
        assert_eq!(args.serve, Some((Framework::Tower, Setup::Sockets)));
        let args = parse(&[child::SERVE_FLAG, "actix"]).unwrap();
        assert_eq!(args.serve, Some((Framework::Actix, Setup::Batches)));
        assert!(parse(&["--only", "http"]).unwrap_err().contains("--only"));
    }

    #[test]
    fn server_cpus_are_a_list_taskset_reads_back() {
        let args = parse(&["--server-cpus", "1,0", "--quick"]).unwrap();
        assert_eq!(
            args.plan.server_cpus.map(|cpus| cpus.to_string()),
            Some("0,1".into())
        );
        assert!(parse(&["--server-cpus", "0-1"]).is_err());
        assert!(parse(&["--server-cpus", "64"]).is_err());
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
