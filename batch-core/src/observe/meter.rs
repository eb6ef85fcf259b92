//! The metrics of batches, ops and sockets, recorded through the `metrics` facade:
//! whatever recorder the application installed (a Prometheus exporter, StatsD, ...)
//! gets them; with none installed, recording does nothing.
//!
//! Handles are looked up once per batch, not per op, and every key (name, labels and
//! their hash) is a static built at compile time: the `metrics` macros build a key
//! with labels at each use, which hashes and allocates, and cost a batch more than
//! the rest of what it records. Each use still asks the recorder in force (the
//! global one, or a thread's local one) for its handle.

use std::time::{Duration, Instant};

use metrics::{Gauge, Histogram, IntoF64, Key, Label, Level, Metadata, Recorder};

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
    describe_gauge!(
        OPS_IN_FLIGHT,
        Unit::Count,
        "Ops waiting for their answer now"
    );
    describe_counter!(REFUSALS, "Batches refused before any op ran, by reason");
    describe_gauge!(SOCKETS_OPEN, Unit::Count, "Sockets open now");
    describe_gauge!(
        SUBSCRIPTIONS,
        Unit::Count,
        "Subscriptions held by open sockets"
    );
}

/// What the `metrics` macros would give every metric recorded here.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

static OP_DURATION_KEY: Key = Key::from_static_name(OP_DURATION);
static BATCH_DURATION_KEY: Key = Key::from_static_name(BATCH_DURATION);
static BATCH_SIZE_KEY: Key = Key::from_static_name(BATCH_SIZE);
static OPS_IN_FLIGHT_KEY: Key = Key::from_static_name(OPS_IN_FLIGHT);
static SOCKETS_OPEN_KEY: Key = Key::from_static_name(SOCKETS_OPEN);
static SUBSCRIPTIONS_KEY: Key = Key::from_static_name(SUBSCRIPTIONS);

/// `batch_requests_total`'s `format` values: each format's name, in [`Format::ALL`]'s
/// order, then `unknown` for a batch refused before its format was known.
const FORMAT_NAMES: [&str; Format::ALL.len() + 1] = {
    let mut names = ["unknown"; Format::ALL.len() + 1];
    let mut format = 0;
    while format < Format::ALL.len() {
        names[format] = Format::ALL[format].name();
        format += 1;
    }
    names
};

/// `batch_requests_total`'s label sets: one per transport, format and outcome.
const REQUEST_SETS: usize = Transport::ALL.len() * FORMAT_NAMES.len() * Outcome::ALL.len();

/// The position in [`REQUEST_KEYS`] of a batch's key.
const fn request_set(transport: usize, format: usize, outcome: usize) -> usize {
    (transport * FORMAT_NAMES.len() + format) * Outcome::ALL.len() + outcome
}

static REQUEST_LABELS: [[Label; 3]; REQUEST_SETS] = {
    let mut labels = [const { [const { Label::from_static_parts("", "") }; 3] }; REQUEST_SETS];
    let mut transport = 0;
    while transport < Transport::ALL.len() {
        let mut format = 0;
        while format < FORMAT_NAMES.len() {
            let mut outcome = 0;
            while outcome < Outcome::ALL.len() {
                let set = [
                    Label::from_static_parts("transport", Transport::ALL[transport].name()),
                    Label::from_static_parts("format", FORMAT_NAMES[format]),
                    Label::from_static_parts("outcome", Outcome::ALL[outcome].name()),
                ];
                put(&mut labels[request_set(transport, format, outcome)], set);
                outcome += 1;
            }
            format += 1;
        }
        transport += 1;
    }
    labels
};
static REQUEST_KEYS: [Key; REQUEST_SETS] = keys(REQUESTS, &REQUEST_LABELS);

static OPS_LABELS: [[Label; 1]; STATUS_CLASSES.len()] = one_label("status", STATUS_CLASSES);
static OPS_KEYS: [Key; STATUS_CLASSES.len()] = keys(OPS, &OPS_LABELS);

static REFUSAL_LABELS: [[Label; 1]; Reason::ALL.len()] = one_label("reason", {
    let mut names = [""; Reason::ALL.len()];
    let mut reason = 0;
    while reason < Reason::ALL.len() {
        names[reason] = Reason::ALL[reason].name();
        reason += 1;
    }
    names
});
static REFUSAL_KEYS: [Key; Reason::ALL.len()] = keys(REFUSALS, &REFUSAL_LABELS);

// A key is found by its enum's discriminant: each `ALL` must list its values in
// declaration order.
const _: () = {
    let mut i = 0;
    while i < Reason::ALL.len() {
        assert!(Reason::ALL[i] as usize == i);
        i += 1;
    }
    let mut i = 0;
    while i < Transport::ALL.len() {
        assert!(Transport::ALL[i] as usize == i);
        i += 1;
    }
    let mut i = 0;
    while i < Outcome::ALL.len() {
        assert!(Outcome::ALL[i] as usize == i);
        i += 1;
    }
    let mut i = 0;
    while i < Format::ALL.len() {
        assert!(Format::ALL[i].index() == i);
        i += 1;
    }
};

/// The label sets of a metric with one label, `key`, one per value.
const fn one_label<const N: usize>(
    key: &'static str,
    values: [&'static str; N],
) -> [[Label; 1]; N] {
    let mut labels = [const { [const { Label::from_static_parts("", "") }; 1] }; N];
    let mut value = 0;
    while value < N {
        put(
            &mut labels[value],
            [Label::from_static_parts(key, values[value])],
        );
        value += 1;
    }
    labels
}

/// The keys of metric `name`, one per label set, hashed here at compile time.
const fn keys<const N: usize, const L: usize>(
    name: &'static str,
    labels: &'static [[Label; L]; N],
) -> [Key; N] {
    let mut keys = [const { Key::from_static_name("") }; N];
    let mut set = 0;
    while set < N {
        put(&mut keys[set], Key::from_static_parts(name, &labels[set]));
        set += 1;
    }
    keys
}

/// Puts `value` in `slot` in a constant, where what it replaces cannot be dropped:
/// a placeholder made of static strings, which owns nothing.
const fn put<T>(slot: &mut T, value: T) {
    std::mem::forget(std::mem::replace(slot, value));
}

fn gauge(key: &Key) -> Gauge {
    metrics::with_recorder(|recorder| recorder.register_gauge(key, &METADATA))
}

/// What carried a batch: an HTTP request, or a socket's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Http,
    Socket,
}

impl Transport {
    /// Every transport, in declaration order (the order of their keys).
    const ALL: [Transport; 2] = [Transport::Http, Transport::Socket];

    pub(crate) const fn name(self) -> &'static str {
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
    /// Every reason, in declaration order (the order of their keys).
    const ALL: [Reason; 5] = [
        Reason::Limit,
        Reason::Validation,
        Reason::Overload,
        Reason::Hook,
        Reason::Idempotency,
    ];

    /// The reason for a refusal by the endpoint's own checks, from its status.
    pub(crate) fn of_check(status: http::StatusCode) -> Self {
        if status == http::StatusCode::PAYLOAD_TOO_LARGE {
            Reason::Limit
        } else {
            Reason::Validation
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Reason::Limit => "limit",
            Reason::Validation => "validation",
            Reason::Overload => "overload",
            Reason::Hook => "hook",
            Reason::Idempotency => "idempotency",
        }
    }
}

/// How a batch ended, as `batch_requests_total`'s `outcome`.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Ok,
    Partial,
    Refused,
}

impl Outcome {
    /// Every outcome, in declaration order (the order of their keys).
    const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Partial, Outcome::Refused];

    const fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Partial => "partial",
            Outcome::Refused => "refused",
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

    /// The batch's duration as a histogram records it: read from the clock only
    /// then, so that with no recorder installed (and no log line written) a batch's
    /// end reads no clock (~90 instructions).
    fn since(&self) -> Since {
        Since(tokio::time::Instant::from_std(self.started))
    }

    /// Records a batch whose ops ran in `format`, from the `tally` of their
    /// statuses, and its duration. Returns how many of them failed (status 400 or
    /// more).
    pub(crate) fn tallied(&self, format: Format, tally: &Tally) -> u64 {
        let failed = tally.failed();
        let outcome = if failed > 0 {
            Outcome::Partial
        } else {
            Outcome::Ok
        };
        // Every handle from one look-up of the recorder in force.
        metrics::with_recorder(|recorder| {
            self.batch_in(recorder, format.index(), outcome);
            recorder
                .register_histogram(&BATCH_SIZE_KEY, &METADATA)
                .record(tally.ops() as f64);
            for (key, count) in OPS_KEYS.iter().zip(tally.by_class) {
                if count > 0 {
                    recorder.register_counter(key, &METADATA).increment(count);
                }
            }
        });
        failed
    }

    /// Records a batch refused for `reason`, in `format` if it was decoded that far
    /// (`unknown` if not).
    pub(crate) fn refused(&self, format: Option<Format>, reason: Reason) {
        let format = format.map_or(Format::ALL.len(), Format::index);
        metrics::with_recorder(|recorder| {
            self.batch_in(recorder, format, Outcome::Refused);
            recorder
                .register_counter(&REFUSAL_KEYS[reason as usize], &METADATA)
                .increment(1);
        });
    }

    /// Counts the batch in `recorder`, by the index of its format and its
    /// `outcome`, and records its duration.
    fn batch_in(&self, recorder: &dyn Recorder, format: usize, outcome: Outcome) {
        let set = request_set(self.transport as usize, format, outcome as usize);
        recorder
            .register_counter(&REQUEST_KEYS[set], &METADATA)
            .increment(1);
        recorder
            .register_histogram(&BATCH_DURATION_KEY, &METADATA)
            .record(self.since());
    }
}

/// How many results of a batch fell in each status class, counted as they come.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    by_class: [u64; 5],
}

impl Tally {
    /// The tally of `results`.
    pub(crate) fn of(results: &[OpResult]) -> Self {
        let mut tally = Self::default();
        for result in results {
            tally.add(result.status);
        }
        tally
    }

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
        // Both handles from one look-up of the recorder in force, as a batch's are.
        metrics::with_recorder(|recorder| Self {
            in_flight: recorder.register_gauge(&OPS_IN_FLIGHT_KEY, &METADATA),
            duration: recorder.register_histogram(&OP_DURATION_KEY, &METADATA),
        })
    }

    /// An op did not answer on its first poll: it waits, and counts as in flight
    /// until the returned guard goes, when it answers or is dropped unanswered (its
    /// batch ended early, its client left). An op answered on its first poll is
    /// never counted: it gave the runtime no moment to see it running, and two
    /// updates of a shared gauge per op cost more than the rest of what an op
    /// records.
    pub(crate) fn waits(&self) -> Waiting {
        self.in_flight.increment(1.0);
        Waiting(self.in_flight.clone())
    }

    /// An op answered after `elapsed` (a [`Duration`], or [`Since`] its start).
    pub(crate) fn answered(&self, elapsed: impl IntoF64) {
        self.duration.record(elapsed);
    }
}

/// The seconds since an op or a batch started, read from the clock only when a
/// histogram records them: with no recorder installed, an op's answer reads no
/// clock.
pub(crate) struct Since(pub(crate) tokio::time::Instant);

impl IntoF64 for Since {
    fn into_f64(self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// An op in flight, counted until this is dropped.
pub(crate) struct Waiting(Gauge);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// One open socket: counted while it lives, with its subscriptions.
pub(crate) struct SocketMeter {
    subscriptions: Gauge,
}

impl SocketMeter {
    pub(crate) fn open() -> Self {
        gauge(&SOCKETS_OPEN_KEY).increment(1.0);
        Self {
            subscriptions: gauge(&SUBSCRIPTIONS_KEY),
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
        gauge(&SOCKETS_OPEN_KEY).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http::StatusCode;
    use metrics::{Counter, KeyName, SharedString, Unit};

    use super::*;

    /// Every handle asked of it, as `kind name{label=value,...} target level`, and
    /// every value its histograms were given, in order.
    #[derive(Default)]
    struct Keys(Arc<Mutex<Vec<String>>>, Arc<Samples>);

    #[derive(Default)]
    struct Samples(Mutex<Vec<f64>>);

    impl metrics::HistogramFn for Samples {
        fn record(&self, value: f64) {
            self.0.lock().unwrap().push(value);
        }
    }

    impl Keys {
        fn note(&self, kind: &str, key: &Key, metadata: &Metadata<'_>) {
            let labels: Vec<String> = key
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            self.0.lock().unwrap().push(format!(
                "{kind} {}{{{}}} {} {:?} {:?}",
                key.name(),
                labels.join(","),
                metadata.target(),
                metadata.level(),
                metadata.module_path(),
            ));
        }
    }

    impl Recorder for Keys {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

        fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
            self.note("counter", key, metadata);
            Counter::noop()
        }

        fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
            self.note("gauge", key, metadata);
            Gauge::noop()
        }

        fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
            self.note("histogram", key, metadata);
            Histogram::from_arc(Arc::clone(&self.1))
        }
    }

    fn recorded(record: impl FnOnce()) -> Vec<String> {
        let keys = Keys::default();
        let seen = Arc::clone(&keys.0);
        metrics::with_local_recorder(&keys, record);
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        seen
    }

    const AT: &str = "batch_core::observe::meter Level(Info) Some(\"batch_core::observe::meter\")";

    #[test]
    fn an_ops_time_since_its_start_is_read_when_a_recorder_records_it() {
        let durations = Keys::default();
        let seen = Arc::clone(&durations.1);
        let start = tokio::time::Instant::now() - Duration::from_secs(2);
        metrics::with_local_recorder(&durations, || {
            let meter = OpMeter::new();
            meter.answered(Since(start));
            meter.answered(Duration::from_millis(1));
        });
        let seen = seen.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!((2.0..60.0).contains(&seen[0]), "{seen:?}");
        assert_eq!(seen[1], 0.001);
        // With no recorder, nothing reads it, and nothing fails.
        OpMeter::new().answered(Since(start));
    }

    #[test]
    fn a_batchs_time_since_its_arrival_is_read_when_a_recorder_records_it() {
        let durations = Keys::default();
        let seen = Arc::clone(&durations.1);
        let meter = BatchMeter {
            started: Instant::now() - Duration::from_secs(2),
            transport: Transport::Http,
        };
        let results = [OpResult::new("a", StatusCode::OK)];
        let tally = Tally::of(&results);
        metrics::with_local_recorder(&durations, || meter.tallied(Format::Native, &tally));
        metrics::with_local_recorder(&durations, || meter.refused(None, Reason::Limit));
        let seen = seen.0.lock().unwrap().clone();
        // Its duration and its size; a refused one's duration.
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!((2.0..60.0).contains(&seen[0]), "{seen:?}");
        assert_eq!(seen[1], 1.0);
        assert!((2.0..60.0).contains(&seen[2]), "{seen:?}");
        // With no recorder, nothing reads it, and nothing fails.
        meter.tallied(Format::Native, &tally);
    }

    #[test]
    fn a_batch_records_its_outcome_size_and_ops_by_status_class() {
        let results = [
            OpResult::new("a", StatusCode::OK),
            OpResult::new("b", StatusCode::NOT_FOUND),
            OpResult::new("c", StatusCode::NO_CONTENT),
        ];
        let seen = recorded(|| {
            let meter = BatchMeter::start(Transport::Socket);
            let failed = meter.tallied(Format::Graph, &Tally::of(&results));
            assert_eq!(failed, 1);
        });
        assert_eq!(
            seen,
            [
                format!("counter batch_ops_total{{status=2xx}} {AT}"),
                format!("counter batch_ops_total{{status=4xx}} {AT}"),
                format!(
                    "counter batch_requests_total{{transport=socket,format=graph,outcome=partial}} {AT}"
                ),
                format!("histogram batch_duration_seconds{{}} {AT}"),
                format!("histogram batch_size_ops{{}} {AT}"),
            ]
        );
        let ok = recorded(|| {
            let meter = BatchMeter::start(Transport::Http);
            meter.tallied(Format::Multipart, &Tally::of(&results[..1]));
        });
        assert!(ok.contains(&format!(
            "counter batch_requests_total{{transport=http,format=multipart,outcome=ok}} {AT}"
        )));
    }

    #[test]
    fn a_refusal_records_its_reason_and_the_format_if_known() {
        let seen = recorded(|| {
            let (http, socket) = (
                BatchMeter::start(Transport::Http),
                BatchMeter::start(Transport::Socket),
            );
            http.refused(None, Reason::Idempotency);
            socket.refused(Some(Format::Aggregate), Reason::Limit);
        });
        assert_eq!(
            seen,
            [
                format!("counter batch_refusals_total{{reason=idempotency}} {AT}"),
                format!("counter batch_refusals_total{{reason=limit}} {AT}"),
                format!(
                    "counter batch_requests_total{{transport=http,format=unknown,outcome=refused}} {AT}"
                ),
                format!(
                    "counter batch_requests_total{{transport=socket,format=aggregate,outcome=refused}} {AT}"
                ),
                format!("histogram batch_duration_seconds{{}} {AT}"),
                format!("histogram batch_duration_seconds{{}} {AT}"),
            ]
        );
    }

    #[test]
    fn ops_and_sockets_record_their_gauges_and_durations() {
        let seen = recorded(|| {
            let ops = OpMeter::new();
            drop(ops.waits());
            ops.answered(Duration::from_millis(1));
            drop(SocketMeter::open());
        });
        assert_eq!(
            seen,
            [
                format!("gauge batch_ops_in_flight{{}} {AT}"),
                format!("gauge batch_sockets_open{{}} {AT}"),
                format!("gauge batch_sockets_open{{}} {AT}"),
                format!("gauge batch_subscriptions{{}} {AT}"),
                format!("histogram batch_op_duration_seconds{{}} {AT}"),
            ]
        );
    }
}
