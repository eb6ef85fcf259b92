//! CPU time of a process, to tell the server's share of a figure from the client's
//! when both run on the same vCPUs: the sum, over its threads, of the time each has
//! run (`/proc/PID/task/TID/schedstat`, in nanoseconds; the tick-based `utime` would
//! round a change's few milliseconds to nothing).

use std::time::Duration;

use crate::BenchError;

/// The time the threads of process `pid` alive now have spent on a CPU. A thread
/// that ended takes its time with it, so compare two readings only across a span in
/// which the process starts and ends no thread (the servers' runtimes keep theirs).
pub(crate) fn of_process(pid: u32) -> Result<Duration, BenchError> {
    let dir = format!("/proc/{pid}/task");
    let tasks =
        std::fs::read_dir(&dir).map_err(|err| BenchError::Io(format!("reading {dir}"), err))?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: it no longer counts.
        let Ok(schedstat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += schedstat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .ok_or_else(|| BenchError::Unexpected {
                what: format!("{}/schedstat", task.path().display()),
                detail: format!("read {schedstat:?}"),
            })?;
    }
    Ok(Duration::from_nanos(total))
}

/// The CPU time of this process's threads (the client's).
pub(crate) fn own() -> Result<Duration, BenchError> {
    of_process(std::process::id())
}

/// The machine's CPU time so far, over every vCPU: all of it, and the part the
/// host took for others (steal). A vCPU's thread keeps "running" while the host
/// has it stopped, so the CPU times above grow with steal: a run that lost much
/// of its time to it has inflated CPU figures, and says so.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Machine {
    total: u64,
    steal: u64,
}

impl Machine {
    /// Reads the `cpu` line of `/proc/stat` (in clock ticks); zero where there is none.
    pub(crate) fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = stat
            .lines()
            .find_map(|line| line.strip_prefix("cpu "))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        // user nice system idle iowait irq softirq steal guest guest_nice; the two
        // guest fields are already counted in user and nice.
        Self {
            total: ticks.iter().take(8).sum(),
            steal: ticks.get(7).copied().unwrap_or(0),
        }
    }

    /// The share of the machine's time since `earlier` that the host took, in percent.
    pub(crate) fn steal_since(self, earlier: Self) -> f64 {
        let total = self.total.saturating_sub(earlier.total).max(1);
        100.0 * self.steal.saturating_sub(earlier.steal) as f64 / total as f64
    }
}
