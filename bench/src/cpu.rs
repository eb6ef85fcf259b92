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
