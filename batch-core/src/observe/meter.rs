//! The metrics of batches, ops and sockets, recorded through the `metrics` facade:
//! whatever recorder the application installed (a Prometheus exporter, StatsD, ...)
//! gets them; with none installed, recording does nothing.
//!
//! Handles are looked up once per batch, not per op: the lookup hashes the metric's
//! name and labels, which would cost more than what an op records.

use std::time::{Duration, Instant};

use metrics::{Gauge, Histogram};

use crate::model::{Format, OpResult};

/// Batches answered or refused: `transport`, `format`, `outcome`.
pub(crate) const REQUESTS: &str = "batch_requests_total";
/// Ops answered, the engine's own answers (424, 504, ...) included: `status`.
pub(crate) const OPS: &str = "batch_ops_total";
/// Seconds from an op's start to its answer.
pub(crate) const OP_DURATION: &str = "batch_op_duration_seconds";
/// Seconds from a batch's arrival to its answer, refusals included.
pub(crate) const BATCH_DURATION: &str = "batch_duration_seconds";
/// Ops in each batch that was planned.
pub(crate) const BATCH_SIZE: &str = "batch_size_ops";
/// Ops running now, across batches and sockets.
pub(crate) const OPS_IN_FLIGHT: &str = "batch_ops_in_flight";
/// Batches refused before any op ran: `reason`.
pub(crate) const REFUSALS: &str = "batch_refusals_total";
/// Sockets open now.
pub(crate) const SOCKETS_OPEN: &str = "batch_sockets_open";
/// Subscriptions held by open sockets now.
pub(crate) const SUBSCRIPTIONS: &str = "batch_subscriptions";

/// Describes every metric to the installed recorder (help text and unit), for
/// exporters that print them. Call it once, after installing the recorder.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS,
        "Batches answered or refused, by transport, format and outcome"
    );
    describe_counter!(OPS, "Ops answered, by status class");
    describe_histogram!(
        OP_DURATION,
        Unit::Seconds,
        "Time from an op's start to its answer"
    );
    describe_histogram!(
        BATCH_DURATION,
        Unit::Seconds,
        "Time from a batch's arrival to its answer"
    );
    describe_histogram!(BATCH_SIZE, Unit::Count, "Ops per planned batch");
    describe_gauge!(OPS_IN_FLIGHT, Unit::Count, "Ops running now");
    describe_counter!(REFUSALS, "Batches refused before any op ran, by reason");
    describe_gauge!(SOCKETS_OPEN, Unit::Count, "Sockets open now");
    describe_gauge!(
        SUBSCRIPTIONS,
        Unit::Count,
        "Subscriptions held by open sockets"
    );
}

/// What carried a batch: an HTTP request, or a socket's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Http,
    Socket,
}

impl Transport {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Socket => "socket",
        }
    }
}

/// Why a batch was refused before any op ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Over a size limit: the body, the op count (413).
    Limit,
    /// Not a batch the endpoint takes: method, format, syntax, an op's fields (400,
    /// 405, 415, 422).
    Validation,
    /// The server-wide cap on ops in flight (503).
    Overload,
    /// A batch hook or a route rule.
    Hook,
    /// Its `Idempotency-Key`: invalid (400), in use (409), reused with another body
    /// (422), or the store unreachable (503).
    Idempotency,
}

impl Reason {
    /// The reason for a refusal by the endpoint's own checks, from its status.
    pub(crate) fn of_check(status: http::StatusCode) -> Self {
        if status == http::StatusCode::PAYLOAD_TOO_LARGE {
            Reason::Limit
        } else {
            Reason::Validation
        }
    }

    fn name(self) -> &'static str {
        match self {
            Reason::Limit => "limit",
            Reason::Validation => "validation",
            Reason::Overload => "overload",
            Reason::Hook => "hook",
            Reason::Idempotency => "idempotency",
        }
    }
}

/// One batch, from its arrival: records its outcome, duration and size.
pub(crate) struct BatchMeter {
    started: Instant,
    transport: Transport,
}

impl BatchMeter {
    pub(crate) fn start(transport: Transport) -> Self {
        Self {
            started: Instant::now(),
            transport,
        }
    }

    /// What carried the batch.
    pub(crate) fn transport(&self) -> Transport {
        self.transport
    }

    /// How long the batch has taken so far.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records a batch whose ops ran: `results` in `format`. Returns how many of
    /// them failed (status 400 or more).
    pub(crate) fn answered(&self, format: Format, results: &[OpResult]) -> u64 {
        let mut tally = Tally::default();
        for result in results {
            tally.add(result.status);
        }
        self.tallied(format, &tally)
    }

    /// Records a batch whose ops ran, from the `tally` of their statuses, and
    /// returns how many failed.
    pub(crate) fn tallied(&self, format: Format, tally: &Tally) -> u64 {
        let failed = tally.failed();
        let outcome = if failed > 0 { "partial" } else { "ok" };
        self.batch(format.name(), outcome);
        metrics::histogram!(BATCH_SIZE).record(tally.ops() as f64);
        for (class, count) in tally.by_class.into_iter().enumerate() {
            if count > 0 {
                metrics::counter!(OPS, "status" => STATUS_CLASSES[class]).increment(count);
            }
        }
        failed
    }

    /// Records a batch refused for `reason`, in `format` if it was decoded that far.
    pub(crate) fn refused(&self, format: Option<Format>, reason: Reason) {
        self.batch(format.map_or("unknown", Format::name), "refused");
        metrics::counter!(REFUSALS, "reason" => reason.name()).increment(1);
    }

    fn batch(&self, format: &'static str, outcome: &'static str) {
        metrics::counter!(
            REQUESTS,
            "transport" => self.transport.name(),
            "format" => format,
            "outcome" => outcome,
        )
        .increment(1);
        metrics::histogram!(BATCH_DURATION).record(self.elapsed().as_secs_f64());
    }
}

/// How many results of a batch fell in each status class, counted as they come.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    by_class: [u64; 5],
}

impl Tally {
    /// Counts one result of `status`.
    pub(crate) fn add(&mut self, status: http::StatusCode) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.by_class[class] += 1;
    }

    /// The results counted.
    pub(crate) fn ops(&self) -> u64 {
        self.by_class.iter().sum()
    }

    /// The results that failed: status 400 or more.
    pub(crate) fn failed(&self) -> u64 {
        self.by_class[3] + self.by_class[4]
    }
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The per-op metrics of one batch's engine run, their handles looked up once.
pub(crate) struct OpMeter {
    in_flight: Gauge,
    duration: Histogram,
}

impl OpMeter {
    pub(crate) fn new() -> Self {
        Self {
            in_flight: metrics::gauge!(OPS_IN_FLIGHT),
            duration: metrics::histogram!(OP_DURATION),
        }
    }

    /// An op starts.
    pub(crate) fn started(&self) {
        self.in_flight.increment(1.0);
    }

    /// An op that started answered after `elapsed`.
    pub(crate) fn ended(&self, elapsed: Duration) {
        self.in_flight.decrement(1.0);
        self.duration.record(elapsed.as_secs_f64());
    }
}

/// One open socket: counted while it lives, with its subscriptions.
pub(crate) struct SocketMeter {
    subscriptions: Gauge,
}

impl SocketMeter {
    pub(crate) fn open() -> Self {
        metrics::gauge!(SOCKETS_OPEN).increment(1.0);
        Self {
            subscriptions: metrics::gauge!(SUBSCRIPTIONS),
        }
    }

    /// The socket holds `n` more subscriptions.
    pub(crate) fn subscribed(&self, n: usize) {
        self.subscriptions.increment(n as f64);
    }

    /// The socket holds `n` fewer subscriptions.
    pub(crate) fn unsubscribed(&self, n: usize) {
        self.subscriptions.decrement(n as f64);
    }
}

impl Drop for SocketMeter {
    fn drop(&mut self) {
        metrics::gauge!(SOCKETS_OPEN).decrement(1.0);
    }
}
