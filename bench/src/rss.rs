//! The server's peak memory while it answers batches of large ops, against the raw
//! payload. The server runs in a child process (this binary, re-run with
//! [`SERVE_FLAG`]) so its high-water mark is its own, not the client's.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;

use crate::client::Http1;
use crate::measure::{batch, batch_of};
use crate::table::{Row, Value};
use crate::{BenchError, Framework, Plan};

/// The internal flag that makes this binary serve a fixture for the parent to watch.
pub(crate) const SERVE_FLAG: &str = "--serve-for-rss";
/// Ops per batch, and each op's body.
const OPS: usize = 50;
const OP_BODY: usize = 100 * 1024;
/// How long a child may take to stop once told to.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The child's side: serves `framework`'s fixture on a free port, prints the address,
/// and stops when its standard input closes, so it never outlives the parent.
pub(crate) fn serve(framework: Framework) -> Result<(), BenchError> {
    let server = crate::start(framework)?;
    println!("{}", server.addr());
    let mut sink = std::io::sink();
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut sink);
    drop(server);
    Ok(())
}

/// The child process, stopped (stdin closed, killed if it lingers) when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `NAME: N kB` field of a `/proc` status or meminfo file, in KiB.
pub(crate) fn kib_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

fn memory(pid: u32, field: &str) -> Result<u64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .map_err(|err| BenchError::Io(format!("reading {path}"), err))?;
    kib_field(&status, field)
        .map(|kib| kib * 1024)
        .ok_or_else(|| BenchError::Unexpected {
            what: path,
            detail: format!("no {field} line"),
        })
}

/// Starts `framework`'s server in a child, warms it up, then sends batches of
/// [`OPS`] POSTs to `/echo` with [`OP_BODY`] bytes each (every op's response is as
/// large) and compares the server's RSS high-water mark to its idle RSS.
pub(crate) fn measure(
    framework: Framework,
    runtime: &tokio::runtime::Runtime,
    plan: Plan,
) -> Result<Row, BenchError> {
    let exe = std::env::current_exe()
        .map_err(|err| BenchError::Io("finding this executable".into(), err))?;
    let child = Command::new(exe)
        .args([SERVE_FLAG, framework.name()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| BenchError::Io("starting the server process".into(), err))?;
    let mut served = Served(child);
    let pid = served.0.id();
    let mut line = String::new();
    if let Some(stdout) = served.0.stdout.take() {
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|err| BenchError::Io("reading the server's address".into(), err))?;
    }
    let addr: SocketAddr = line.trim().parse().map_err(|_| BenchError::Unexpected {
        what: "the server process".into(),
        detail: format!("printed {line:?} instead of its address"),
    })?;
    let text = "x".repeat(OP_BODY - 2); // a JSON string of OP_BODY bytes, quotes included
    let large = batch_of(
        OPS,
        |_| json!({ "method": "POST", "url": "/echo", "body": text }),
    );
    let small = batch_of(OPS, |i| json!({ "url": format!("/items/{}", i + 1) }));
    let (idle, peak) = runtime.block_on(async {
        let mut h1 = Http1::connect(addr).await?;
        for _ in 0..3 {
            batch(&mut h1, &small, OPS).await?;
            h1.send(Method::GET, "/health", None).await?;
        }
        let idle = memory(pid, "VmRSS")?;
        for _ in 0..plan.rss_batches {
            batch(&mut h1, &large, OPS).await?;
        }
        Ok::<_, BenchError>((idle, memory(pid, "VmHWM")?))
    })?;
    drop(served);
    let payload = (OPS * OP_BODY) as u64;
    let growth = peak.saturating_sub(idle);
    Ok(Row::new(
        framework,
        &format!(
            "server RSS growth, batches of {OPS} × 100 KiB echoed (idle {} → peak {})",
            Value::Bytes(idle),
            Value::Bytes(peak)
        ),
        Value::Bytes(growth),
        "raw op payload",
        Value::Bytes(payload),
        growth as f64 / payload as f64,
        "× the payload",
    ))
}
