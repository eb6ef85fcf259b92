//! A fixture server in a child process (this binary, re-run with [`SERVE_FLAG`]):
//! its memory and CPU time are its own, not the client's, and it can be given CPUs
//! of its own.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{BenchError, Cpus, Framework, Setup};

/// The internal flag that makes this binary serve a fixture for the parent; its
/// value is the framework and the setup: `axum`, `axum+sockets`.
pub(crate) const SERVE_FLAG: &str = "--serve-in-child";
/// What [`SERVE_FLAG`]'s value ends with when the child serves sockets.
const SOCKETS_SUFFIX: &str = "+sockets";
/// What it ends with when the child serves the streaming figures' payload server.
const PAYLOAD_SUFFIX: &str = "+payload";
/// What it ends with when the child serves sockets rechecked every N ms (`off`:
/// never): `axum+recheck=0`.
const RECHECK_SUFFIX: &str = "+recheck=";
/// How long a child may take to stop once told to.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The framework and setup a [`SERVE_FLAG`] value names.
pub(crate) fn parse_serve(value: &str) -> Option<(Framework, Setup)> {
    if let Some((name, interval)) = value.split_once(RECHECK_SUFFIX) {
        let interval = match interval {
            "off" => None,
            millis => Some(Duration::from_millis(millis.parse().ok()?)),
        };
        return Some((Framework::from_name(name)?, Setup::Recheck(interval)));
    }
    if let Some(name) = value.strip_suffix(SOCKETS_SUFFIX) {
        return Some((Framework::from_name(name)?, Setup::Sockets));
    }
    if let Some(name) = value.strip_suffix(PAYLOAD_SUFFIX) {
        return Some((Framework::from_name(name)?, Setup::Payload));
    }
    Some((Framework::from_name(value)?, Setup::Batches))
}

/// The child's side: serves `framework`'s fixture on a free port, prints the address,
/// and stops when its standard input closes, so it never outlives the parent.
pub(crate) fn serve(framework: Framework, setup: Setup) -> Result<(), BenchError> {
    let server = match setup {
        Setup::Payload => crate::streaming::payload_server()?,
        _ => crate::start(framework, setup)?,
    };
    println!("{}", server.addr());
    let mut sink = std::io::sink();
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut sink);
    drop(server);
    Ok(())
}

/// The child process, stopped (stdin closed, killed if it lingers) when dropped.
pub(crate) struct Served(Child);

impl Served {
    /// Starts `framework`'s server with `setup` in a child, on `cpus` if given (with
    /// `taskset`): the child and its address.
    pub(crate) fn start(
        framework: Framework,
        setup: Setup,
        cpus: Option<Cpus>,
    ) -> Result<(Self, SocketAddr), BenchError> {
        let exe = std::env::current_exe()
            .map_err(|err| BenchError::Io("finding this executable".into(), err))?;
        let value = match setup {
            Setup::Batches => framework.name().to_owned(),
            Setup::Sockets => format!("{}{SOCKETS_SUFFIX}", framework.name()),
            Setup::Payload => format!("{}{PAYLOAD_SUFFIX}", framework.name()),
            Setup::Recheck(interval) => format!(
                "{}{RECHECK_SUFFIX}{}",
                framework.name(),
                interval.map_or("off".to_owned(), |every| every.as_millis().to_string())
            ),
        };
        let mut command = match cpus {
            Some(cpus) => {
                let mut taskset = Command::new("taskset");
                taskset.arg("-c").arg(cpus.to_string()).arg(exe);
                taskset
            }
            None => Command::new(exe),
        };
        let child = command
            .args([SERVE_FLAG, &value])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| BenchError::Io("starting the server process".into(), err))?;
        let mut served = Served(child);
        let mut line = String::new();
        if let Some(stdout) = served.0.stdout.take() {
            BufReader::new(stdout)
                .read_line(&mut line)
                .map_err(|err| BenchError::Io("reading the server's address".into(), err))?;
        }
        let addr = line.trim().parse().map_err(|_| BenchError::Unexpected {
            what: "the server process".into(),
            detail: format!("printed {line:?} instead of its address"),
        })?;
        Ok((served, addr))
    }

    /// Its memory figure `field` of `/proc/PID/status` (`VmRSS`, `VmHWM`), in bytes.
    pub(crate) fn memory(&self, field: &str) -> Result<u64, BenchError> {
        let path = format!("/proc/{}/status", self.0.id());
        let status = std::fs::read_to_string(&path)
            .map_err(|err| BenchError::Io(format!("reading {path}"), err))?;
        kib_field(&status, field)
            .map(|kib| kib * 1024)
            .ok_or_else(|| BenchError::Unexpected {
                what: path,
                detail: format!("no {field} line"),
            })
    }

    /// The CPU time its threads have had so far.
    pub(crate) fn cpu_time(&self) -> Result<Duration, BenchError> {
        crate::cpu::of_process(self.0.id())
    }
}

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
