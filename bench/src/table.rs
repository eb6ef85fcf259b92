//! The one table the bench prints, and the machine it ran on.

use std::time::Duration;

use crate::Framework;

/// A figure in its own unit.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value {
    Time(Duration),
    /// Operations per second.
    Rate(f64),
    Bytes(u64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Time(t) if t < Duration::from_millis(1) => {
                write!(f, "{:.1} µs", t.as_secs_f64() * 1e6)
            }
            Value::Time(t) => write!(f, "{:.2} ms", t.as_secs_f64() * 1e3),
            Value::Rate(r) => write!(f, "{r:.0} ops/s"),
            Value::Bytes(b) => write!(f, "{:.1} MiB", b as f64 / f64::from(1 << 20)),
        }
    }
}

/// One measurement against its baseline from the same run.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    framework: &'static str,
    what: String,
    value: Value,
    baseline_name: String,
    baseline: Value,
    ratio: f64,
    /// How to read the ratio.
    reads: &'static str,
}

impl Row {
    pub(crate) fn new(
        framework: Framework,
        what: &str,
        value: Value,
        baseline_name: &str,
        baseline: Value,
        ratio: f64,
        reads: &'static str,
    ) -> Self {
        Self {
            framework: framework.name(),
            what: what.to_owned(),
            value,
            baseline_name: baseline_name.to_owned(),
            baseline,
            ratio,
            reads,
        }
    }

    /// A time against a baseline time, as a speed-up: how many times faster.
    pub(crate) fn faster(
        framework: Framework,
        what: &str,
        took: Duration,
        baseline_name: &str,
        baseline: Duration,
    ) -> Self {
        let ratio = baseline.as_secs_f64() / took.as_secs_f64().max(f64::MIN_POSITIVE);
        Self::new(
            framework,
            what,
            Value::Time(took),
            baseline_name,
            Value::Time(baseline),
            ratio,
            "× faster",
        )
    }
}

/// Prints `rows` as one Markdown table.
pub(crate) fn print(rows: &[Row]) {
    println!("| framework | measurement | median | baseline | baseline median | ratio |");
    println!("|---|---|---:|---|---:|---:|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.2}{} |",
            row.framework,
            row.what,
            row.value,
            row.baseline_name,
            row.baseline,
            row.ratio,
            row.reads
        );
    }
}

/// The machine, from `/proc`: vCPUs, CPU model and memory.
pub(crate) fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown CPU", |(_, model)| model.trim());
    let cpus = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    // Fewer under `taskset`, which the figures then reflect.
    let usable = std::thread::available_parallelism().map_or(0, usize::from);
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| crate::rss::kib_field(&meminfo, "MemTotal"))
        .unwrap_or(0);
    format!(
        "machine: {cpus} vCPUs ({usable} usable by this run), {model}, {:.1} GiB RAM",
        memory_kib as f64 / f64::from(1 << 20)
    )
}
