//! `soak`: concurrent clients send mixed valid and invalid batches to a fixture server
//! for a set time, then report requests, ops, errors by kind and the server's memory.
//!
//! Not part of `cargo test`. Against the release demo, started by the soak itself:
//!
//! ```text
//! cargo build --release -p demo -p conformance
//! target/release/soak --demo target/release/demo --clients 32 --seconds 300
//! ```

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use conformance::client::Client;
use serde_json::{Value, json};

const HELP: &str = "\
Soaks a batch server with mixed valid and invalid batches and reports what happened.

Usage: soak (--demo <PATH> [--framework <NAME>] | --url <URL> [--pid <PID>])
            [--clients <N>] [--seconds <N>]

Options:
  --demo <PATH>       start this demo binary on a free port of 127.0.0.1 and soak it
  --framework <NAME>  the demo's framework: axum (default), actix or warp
  --url <URL>         soak a server already running at URL (such as http://127.0.0.1:3000)
  --pid <PID>         that server's process id, to report its memory
  --clients <N>       concurrent clients (default 32)
  --seconds <N>       how long to send (default 60)
  -h, --help          print this help";

struct Args {
    target: Target,
    clients: usize,
    seconds: u64,
}

enum Target {
    Demo { path: String, framework: String },
    Url { url: String, pid: Option<u32> },
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut demo, mut framework, mut url, mut pid) = (None, "axum".to_owned(), None, None);
    let (mut clients, mut seconds) = (32, 60);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        let number = |flag: &str, text: String| {
            text.parse::<u64>()
                .map_err(|_| format!("{flag} wants a whole number, got {text:?}"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--demo" => demo = Some(value("--demo")?),
            "--framework" => framework = value("--framework")?,
            "--url" => url = Some(value("--url")?),
            "--pid" => {
                let n = number("--pid", value("--pid")?)?;
                pid = Some(u32::try_from(n).map_err(|_| "--pid is too large".to_owned())?);
            }
            "--clients" => {
                let n = number("--clients", value("--clients")?)?;
                clients = usize::try_from(n).map_err(|_| "--clients is too large".to_owned())?;
            }
            "--seconds" => seconds = number("--seconds", value("--seconds")?)?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let target = match (demo, url) {
        (Some(path), None) => Target::Demo { path, framework },
        (None, Some(url)) => Target::Url { url, pid },
        _ => return Err("give exactly one of --demo and --url".to_owned()),
    };
    if clients == 0 {
        return Err("--clients must be at least 1".to_owned());
    }
    Ok(Some(Args {
        target,
        clients,
        seconds,
    }))
}

/// One kind of batch a client sends, and the status the batch must get.
struct Kind {
    name: &'static str,
    content_type: &'static str,
    body: Bytes,
    expect: u16,
    /// The server may close the connection before the client has sent the whole body
    /// (it refuses an over-limit body without reading it), so no response is fine.
    may_close: bool,
}

/// The mix: answered batches with ops that succeed, 404, fail their dependency, panic
/// and time out, in three formats; and every batch-level refusal.
fn kinds() -> Vec<Kind> {
    let json = |name, document: Value, expect| Kind {
        name,
        content_type: "application/json",
        body: Bytes::from(document.to_string()),
        expect,
        may_close: false,
    };
    let mut over_limit = br#"{"ops": [{"url": "/health"}], "pad": ""#.to_vec();
    over_limit.resize(1024 * 1024 + 1, b'x');
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let too_many: Vec<Value> = (0..51).map(|_| json!({"url": "/health"})).collect();
    vec![
        json(
            "mixed",
            json!({"ops": [
                {"url": "/health"},
                {"url": "/items?limit=5"},
                // A write that leaves the store's size alone, so the server's memory
                // shows the batch machinery and not a growing item list.
                {"id": "write", "method": "PATCH", "url": "/items/1", "body": {"name": "soak"}},
                {"method": "DELETE", "url": "/items/999999", "depends_on": "write"},
                {"url": "/echo?x=1", "headers": {"x-soak": "1"}},
                {"url": "/nope"},
                {"id": "fail", "url": "/status/500"},
                {"url": "/health", "depends_on": "fail"},
                {"url": "/panic"},
                {"url": "/slow?ms=200", "timeout_ms": 20},
                {"url": "/slow?ms=5"},
                {"url": "/binary"},
            ]}),
            200,
        ),
        json(
            "graph",
            json!({"requests": [
                {"id": "1", "method": "GET", "url": "/items/1"},
                {"id": "2", "method": "GET", "url": "/items/999999", "dependsOn": ["1"]},
            ]}),
            200,
        ),
        json(
            "aggregate",
            json!(["/health", "/items/2", "/nope"]),
            200,
        ),
        Kind {
            name: "multipart",
            content_type: "multipart/mixed; boundary=b",
            body: Bytes::from_static(
                b"--b\r\ncontent-type: application/http\r\n\r\nGET /items/3 HTTP/1.1\r\n\r\n\r\n--b--\r\n",
            ),
            expect: 200,
            may_close: false,
        },
        json("bad_url", json!({"ops": [{"url": "/a/../batch"}]}), 422),
        json(
            "forbidden_header",
            json!({"ops": [{"url": "/whoami", "headers": {"authorization": "Bearer x"}}]}),
            422,
        ),
        json("nested", json!({"ops": [{"method": "POST", "url": "/BATCH/"}]}), 422),
        json("too_many_ops", json!({ "ops": too_many }), 413),
        Kind {
            name: "not_json",
            content_type: "application/json",
            body: Bytes::from_static(b"{\"ops\": [{\"url\": "),
            expect: 400,
            may_close: false,
        },
        Kind {
            name: "deep",
            content_type: "application/json",
            body: Bytes::from(deep),
            expect: 400,
            may_close: false,
        },
        Kind {
            name: "form",
            content_type: "application/x-www-form-urlencoded",
            body: Bytes::from_static(b"batch=%5B%5D"),
            expect: 415,
            may_close: false,
        },
        Kind {
            name: "over_limit",
            content_type: "application/json",
            body: Bytes::from(over_limit),
            expect: 413,
            may_close: true,
        },
    ]
}

/// What the clients saw, merged across clients.
#[derive(Default)]
struct Tally {
    requests: u64,
    ops: u64,
    /// Batches by kind and the status they got (`unexpected` when it was not the
    /// kind's expected status).
    batches: BTreeMap<String, u64>,
    /// Op results by status, for answered batches.
    op_statuses: BTreeMap<u16, u64>,
    /// Requests that got no response, by error.
    transport: BTreeMap<String, u64>,
}

async fn client(client: Client, kinds: Arc<Vec<Kind>>, offset: usize, until: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut next = offset;
    while Instant::now() < until {
        let kind = &kinds[next % kinds.len()];
        next += 1;
        let headers = [
            ("content-type".to_owned(), kind.content_type.to_owned()),
            ("authorization".to_owned(), "Bearer soak".to_owned()),
        ];
        tally.requests += 1;
        match client
            .send("POST", "/batch", &headers, kind.body.clone())
            .await
        {
            Ok(exchange) => {
                let status = exchange.status.as_u16();
                let verdict = if status == kind.expect {
                    ""
                } else {
                    " UNEXPECTED"
                };
                *tally
                    .batches
                    .entry(format!("{} {status}{verdict}", kind.name))
                    .or_default() += 1;
                if status == 200 {
                    count_ops(&exchange.body, &mut tally);
                }
            }
            Err(_) if kind.may_close => {
                let key = format!("{} closed before the body was sent", kind.name);
                *tally.batches.entry(key).or_default() += 1;
            }
            Err(err) => *tally.transport.entry(err.to_string()).or_default() += 1,
        }
    }
    tally
}

/// Counts op statuses in a native, Graph, aggregate or multipart answer.
fn count_ops(body: &[u8], tally: &mut Tally) {
    let mut record = |status: u16| {
        tally.ops += 1;
        *tally.op_statuses.entry(status).or_default() += 1;
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => {
            let list = object.get("results").or_else(|| object.get("responses"));
            match list.and_then(Value::as_array) {
                Some(results) => results
                    .iter()
                    .filter_map(|r| r["status"].as_u64())
                    .filter_map(|s| u16::try_from(s).ok())
                    .for_each(&mut record),
                // The aggregate answer maps path to body and carries no statuses.
                None => object.values().for_each(|_| record(0)),
            }
        }
        _ => {
            // multipart: one embedded status line per part
            let text = String::from_utf8_lossy(body);
            for line in text.lines().filter(|l| l.starts_with("HTTP/1.1 ")) {
                let status = line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
                record(status);
            }
        }
    }
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Starts the demo on a free port and waits until it answers.
fn start_demo(path: &str, framework: &str) -> Result<(Child, String), String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|err| format!("no free port: {err}"))?
        .port();
    let child = Command::new(path)
        .args([
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--framework",
            framework,
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot start {path}: {err}"))?;
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("{path} did not listen on {url} within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((child, url))
}

fn run(args: Args) -> Result<(), String> {
    let (mut child, url, pid) = match args.target {
        Target::Demo { path, framework } => {
            let (child, url) = start_demo(&path, &framework)?;
            let pid = child.id();
            (Some(child), url, Some(pid))
        }
        Target::Url { url, pid } => (None, url, pid),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("no runtime: {err}"))?;
    let start_memory = pid.and_then(memory);
    let peak_rss = Arc::new(Mutex::new(start_memory.map_or(0, |(rss, _)| rss)));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let tally = runtime.block_on(async {
        let sampler = pid.map(|pid| {
            let peak = Arc::clone(&peak_rss);
            tokio::spawn(async move {
                for second in 0u64.. {
                    if let (Some((rss, _)), Ok(mut peak)) = (memory(pid), peak.lock()) {
                        *peak = (*peak).max(rss);
                        // A line a minute shows whether memory levels off.
                        if second % 60 == 0 {
                            println!("server RSS after {second} s: {rss} KiB");
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        });
        let kinds = Arc::new(kinds());
        let shared = Client::new(&url);
        let tasks: Vec<_> = (0..args.clients)
            .map(|i| tokio::spawn(client(shared.clone(), Arc::clone(&kinds), i, until)))
            .collect();
        let mut total = Tally::default();
        for task in tasks {
            match task.await {
                Ok(tally) => merge(&mut total, tally),
                Err(err) => {
                    *total
                        .transport
                        .entry(format!("client task: {err}"))
                        .or_default() += 1
                }
            }
        }
        if let Some(sampler) = sampler {
            sampler.abort();
        }
        total
    });
    let elapsed = started.elapsed();
    let end_memory = pid.and_then(memory);
    report(
        &tally,
        elapsed,
        args.clients,
        start_memory,
        end_memory,
        *peak_rss.lock().map_err(|_| "poisoned")?,
    );
    if let Some(child) = child.as_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let unexpected: u64 = tally
        .batches
        .iter()
        .filter(|(key, _)| key.ends_with("UNEXPECTED"))
        .map(|(_, n)| n)
        .sum();
    if unexpected > 0 || !tally.transport.is_empty() {
        return Err(format!(
            "{unexpected} batches got an unexpected status, {} got no response",
            tally.transport.values().sum::<u64>()
        ));
    }
    Ok(())
}

fn merge(total: &mut Tally, tally: Tally) {
    total.requests += tally.requests;
    total.ops += tally.ops;
    for (key, n) in tally.batches {
        *total.batches.entry(key).or_default() += n;
    }
    for (key, n) in tally.op_statuses {
        *total.op_statuses.entry(key).or_default() += n;
    }
    for (key, n) in tally.transport {
        *total.transport.entry(key).or_default() += n;
    }
}

fn report(
    tally: &Tally,
    elapsed: Duration,
    clients: usize,
    start: Option<(u64, u64)>,
    end: Option<(u64, u64)>,
    peak_rss: u64,
) {
    let seconds = elapsed.as_secs_f64();
    println!("clients: {clients}, duration: {seconds:.1} s");
    println!(
        "requests: {} ({:.0}/s), ops: {} ({:.0}/s)",
        tally.requests,
        tally.requests as f64 / seconds,
        tally.ops,
        tally.ops as f64 / seconds
    );
    println!("batches by kind and status:");
    for (key, n) in &tally.batches {
        println!("  {key}: {n}");
    }
    println!("op results by status (0: the aggregate format carries none):");
    for (status, n) in &tally.op_statuses {
        println!("  {status}: {n}");
    }
    println!(
        "requests without a response: {}",
        tally.transport.values().sum::<u64>()
    );
    for (error, n) in &tally.transport {
        println!("  {error}: {n}");
    }
    match (start, end) {
        (Some((rss0, hwm0)), Some((rss1, hwm1))) => {
            println!("server RSS at start: {rss0} KiB (VmHWM {hwm0} KiB)");
            println!("server RSS at end: {rss1} KiB (VmHWM {hwm1} KiB)");
            println!("server RSS peak sampled each second: {peak_rss} KiB");
        }
        _ => println!("server memory: unknown (give --pid, or use --demo)"),
    }
}

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)).map(|args| args.map(run)) {
        Ok(None) => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        Ok(Some(Ok(()))) => ExitCode::SUCCESS,
        Ok(Some(Err(message))) => {
            eprintln!("soak: {message}");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{HELP}");
            ExitCode::from(2)
        }
    }
}
