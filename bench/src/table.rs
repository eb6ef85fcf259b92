//! The tables the bench prints, and the machine it ran on.

use std::time::Duration;

use crate::Framework;
use crate::cost::{self, Cost, Cpu, SENT, Sent};
use crate::fanout::FanOut;
use crate::measure::{CLIENTS, THROUGHPUT_BATCH};

/// The target: every subscriber of a change notified within this long of
/// the mutation's answer.
const FAN_OUT_TARGET: Duration = Duration::from_millis(10);

/// How [`Row::faster`]'s ratio reads; below 1 it is printed the other way round.
const FASTER: &str = "× faster";

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
            Value::Bytes(b) if b < 1 << 20 => write!(f, "{:.1} KiB", b as f64 / 1024.0),
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

    /// The row as measured on `server` rather than one framework's fixture.
    pub(crate) fn on(mut self, server: &'static str) -> Self {
        self.framework = server;
        self
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
            FASTER,
        )
    }
}

/// Prints `rows` as one Markdown table.
pub(crate) fn print(rows: &[Row]) {
    println!("| framework | measurement | median | baseline | baseline median | ratio |");
    println!("|---|---|---:|---|---:|---:|");
    for row in rows {
        let ratio = if row.reads == FASTER && row.ratio < 1.0 {
            format!("{:.2}× slower", 1.0 / row.ratio.max(f64::MIN_POSITIVE))
        } else {
            format!("{:.2}{}", row.ratio, row.reads)
        };
        println!(
            "| {} | {} | {} | {} | {} | {ratio} |",
            row.framework, row.what, row.value, row.baseline_name, row.baseline,
        );
    }
}

/// Prints the fan-out figures as one Markdown table: delivery times next to the
/// `PATCH`'s round trip, and each count's figures next to the one subscriber's.
pub(crate) fn print_fan_out(figures: &[FanOut]) {
    println!(
        "| framework | subscribers | PATCH round trip | delivery after the answer: p50 | p99 \
         | all notified: median change | worst change | median change / round trip \
         | PATCH sent to last receipt | / 1 subscriber's | CPU per event: server | client \
         | events/s in bursts | / 1 subscriber's | worst within {} ms |",
        FAN_OUT_TARGET.as_millis()
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for figure in figures {
        let one = figures
            .iter()
            .find(|one| one.framework == figure.framework && one.subscribers == 1);
        let ratio = |of: f64, to: f64| format!("{:.2}×", of / to.max(f64::MIN_POSITIVE));
        let to_one =
            |of: fn(&FanOut) -> f64| one.map_or("n/a".to_owned(), |one| ratio(of(figure), of(one)));
        let met = figure.all_worst <= FAN_OUT_TARGET.as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} (of {}) |",
            figure.framework.name(),
            figure.subscribers,
            Value::Time(figure.round_trip),
            offset(figure.p50),
            offset(figure.p99),
            offset(figure.all_median),
            offset(figure.all_worst),
            ratio(figure.all_median, figure.round_trip.as_secs_f64()),
            Value::Time(figure.from_send),
            to_one(|f| f.from_send.as_secs_f64()),
            Value::Time(figure.server_cpu),
            Value::Time(figure.client_cpu),
            figure.events_per_second,
            to_one(|f| f.events_per_second),
            if met { "yes" } else { "**no**" },
            figure.changes,
        );
    }
}

/// Prints what an op costs as one Markdown table: in-process, a direct request
/// against an op of a batch and the engine's share (their difference); then the
/// server's and the client's CPU time per op, single requests against batches.
pub(crate) fn print_costs(costs: &[Cost]) {
    let n = cost::OPS;
    let ways: Vec<String> = cost::WAYS
        .iter()
        .map(|way| way.map_or("single GETs".to_owned(), |n| format!("batches of {n}")))
        .collect();
    println!(
        "| framework | in-process: {n} GETs straight to the app, per request \
         | 1 batch of {n} through the adapter, per op | engine share per op \
         | server CPU per op: {} | server CPU, single / batched \
         | client CPU per op: {} |",
        ways.join(" | "),
        ways.join(" | "),
    );
    let cpu_columns = "---:|".repeat(cost::WAYS.len());
    println!("|---|---:|---:|---:|{cpu_columns}---|{cpu_columns}");
    let nanos = |t: Duration| t.as_secs_f64() * 1e9;
    for cost in costs {
        let share = nanos(cost.batched) - nanos(cost.direct);
        let sign = if share < 0.0 { "−" } else { "" };
        let column = |of: fn(&Cpu) -> Duration| {
            let times: Vec<String> = cost
                .cpu
                .iter()
                .map(|cpu| Value::Time(of(cpu)).to_string())
                .collect();
            times.join(" | ")
        };
        let single = nanos(cost.cpu[0].server);
        let ratios: Vec<String> = cost.cpu[1..]
            .iter()
            .map(|cpu| format!("{:.2}×", single / nanos(cpu.server).max(f64::MIN_POSITIVE)))
            .collect();
        println!(
            "| {} | {:.0} ns | {:.0} ns | {sign}{:.0} ns | {} | {} | {} |",
            cost.framework.name(),
            nanos(cost.direct),
            nanos(cost.batched),
            share.abs(),
            column(|cpu| cpu.server),
            ratios.join(", "),
            column(|cpu| cpu.client),
        );
    }
}

/// Prints what each request of [`SENT`] costs as one Markdown table: the server's
/// and the client's CPU time and the app's own in-process time, per request; what
/// HTTP and the runtime charge a request for its body (`POST /echo` against a GET)
/// and a batch beyond that (a batch against `POST /echo` of the same body); and the
/// ceiling the CPU puts on batches against single GETs at [`CLIENTS`] clients, as
/// measured and without that charge for a body.
pub(crate) fn print_requests(costs: &[Cost]) {
    let names = SENT.map(Sent::name).join(" / ");
    let batch = Sent::Batch(THROUGHPUT_BATCH);
    println!(
        "| framework | server CPU per request: {names} | client CPU per request: {names} \
         | in-process per request: {names} | a body's cost to HTTP: {echo} less GET \
         | {batch} less {echo}, to HTTP | {CLIENTS} clients, {batch} vs GETs: CPU ceiling \
         | the same if a body cost HTTP nothing |",
        echo = Sent::Echo.name(),
        batch = batch.name(),
    );
    println!("|---|---|---|---|---:|---:|---:|---:|");
    let micros = |t: Duration| format!("{:.1}", t.as_secs_f64() * 1e6);
    let signed = |a: Duration, b: Duration| {
        let d = (a.as_secs_f64() - b.as_secs_f64()) * 1e6;
        format!("{}{:.1} µs", if d < 0.0 { "−" } else { "" }, d.abs())
    };
    for cost in costs {
        let all = |of: fn(&cost::PerRequest) -> Duration| {
            let each: Vec<String> = cost.requests.iter().map(|r| micros(of(r))).collect();
            format!("{} µs", each.join(" / "))
        };
        let (get, echo, batched) = (cost.of(Sent::Get), cost.of(Sent::Echo), cost.of(batch));
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2}× | {:.2}× |",
            cost.framework.name(),
            all(|r| r.cpu.server),
            all(|r| r.cpu.client),
            all(|r| r.in_process),
            signed(echo.http(), get.http()),
            signed(batched.http(), echo.http()),
            cost.ceiling(Duration::ZERO),
            cost.ceiling(cost.body_cost()),
        );
    }
}

/// What rechecking subscriptions costs a fan-out: each recheck setting's figures,
/// against the same framework's without rechecks.
pub(crate) fn print_rechecks(figures: &[(&str, FanOut)]) {
    println!(
        "| framework | subscribers | recheck | CPU per event: server | / off | events/s in bursts \
         | / off | all notified: median change | PATCH sent to last receipt |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|");
    for (label, figure) in figures {
        let off = figures
            .iter()
            .find(|(label, off)| *label == "off" && off.framework == figure.framework)
            .map(|(_, off)| off);
        let ratio = |of: f64, to: f64| format!("{:.2}×", of / to.max(f64::MIN_POSITIVE));
        let to_off =
            |of: fn(&FanOut) -> f64| off.map_or("n/a".to_owned(), |off| ratio(of(figure), of(off)));
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
            figure.framework.name(),
            figure.subscribers,
            label,
            Value::Time(figure.server_cpu),
            to_off(|f| f.server_cpu.as_secs_f64()),
            figure.events_per_second,
            to_off(|f| f.events_per_second),
            offset(figure.all_median),
            Value::Time(figure.from_send),
        );
    }
}

/// The load average over 1, 5 and 15 minutes (`/proc/loadavg`): how busy the
/// shared machine was around a run.
pub(crate) fn load_average() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let figures: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    format!("load average: {}", figures.join(" "))
}

/// A time that may be negative (an event read before the answer it is timed from).
fn offset(seconds: f64) -> String {
    let sign = if seconds < 0.0 { "−" } else { "" };
    format!(
        "{sign}{}",
        Value::Time(Duration::from_secs_f64(seconds.abs()))
    )
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
        .and_then(|meminfo| crate::child::kib_field(&meminfo, "MemTotal"))
        .unwrap_or(0);
    format!(
        "machine: {cpus} vCPUs ({usable} usable by this run), {model}, {:.1} GiB RAM",
        memory_kib as f64 / f64::from(1 << 20)
    )
}
