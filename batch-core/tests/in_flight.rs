//! `batch_ops_in_flight`, read from a recorder of the test's own: an op that waits
//! is counted while it waits, and not once it answered or its batch was dropped.
//! And `batch_op_duration_seconds`: every op's time, with no subscriber listening.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use batch_core::{BatchEndpoint, Config};
use common::{Script, batch_request};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use serde_json::json;

/// A recorder that keeps `batch_ops_in_flight` and ignores everything else.
#[derive(Default)]
struct InFlight(Arc<AtomicU64>);

impl InFlight {
    fn now(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::SeqCst))
    }
}

impl Recorder for InFlight {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        if key.name() == "batch_ops_in_flight" {
            Gauge::from_arc(self.0.clone())
        } else {
            Gauge::noop()
        }
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// A recorder that keeps what `batch_op_duration_seconds` records.
#[derive(Default)]
struct OpDurations(Arc<Mutex<Vec<f64>>>);

impl metrics::HistogramFn for OpDurations {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

impl Recorder for OpDurations {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        if key.name() == "batch_op_duration_seconds" {
            Histogram::from_arc(Arc::new(OpDurations(self.0.clone())))
        } else {
            Histogram::noop()
        }
    }
}

/// Polls `future` once, leaving it where it is.
async fn poll_once<F: Future>(mut future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn an_op_that_waits_is_in_flight_until_it_answers() {
    let recorder = InFlight::default();
    metrics::with_local_recorder(&recorder, || {
        runtime().block_on(async {
            let endpoint = BatchEndpoint::new(Config::default());
            let body = json!({"ops": [{"url": "/sleep/50"}, {"url": "/sleep/50"}, {"url": "/a"}]});
            let script = Script::default();
            let mut answer = std::pin::pin!(endpoint.handle(&script, batch_request(&body)));
            assert!(poll_once(answer.as_mut()).await.is_pending());
            // The two sleepers wait; the echo answered on its first poll.
            assert_eq!(recorder.now(), 2.0);
            let response = answer.await;
            assert_eq!(response.status(), 200);
            assert_eq!(recorder.now(), 0.0);
        });
    });
}

#[test]
fn an_op_dropped_while_it_waits_is_no_longer_in_flight() {
    let recorder = InFlight::default();
    metrics::with_local_recorder(&recorder, || {
        runtime().block_on(async {
            let endpoint = BatchEndpoint::new(Config::default());
            let body = json!({"ops": [{"url": "/sleep/60000"}]});
            let script = Script::default();
            let mut answer = Box::pin(endpoint.handle(&script, batch_request(&body)));
            assert!(poll_once(answer.as_mut()).await.is_pending());
            assert_eq!(recorder.now(), 1.0);
            // The client went away: the batch's future is dropped with its op.
            drop(answer);
            assert_eq!(recorder.now(), 0.0);
        });
    });
}

#[test]
fn every_op_has_its_time_recorded_with_no_subscriber() {
    let recorder = OpDurations::default();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let endpoint = BatchEndpoint::new(Config::default());
            let body = json!({"ops": [{"url": "/sleep/50"}, {"url": "/a"}]});
            let response = endpoint
                .handle(&Script::default(), batch_request(&body))
                .await;
            assert_eq!(response.status(), 200);
        });
    });
    let mut seen = recorder.0.lock().unwrap().clone();
    seen.sort_by(f64::total_cmp);
    // The clock is paused: the echo answered at once, the sleeper after its 50 ms.
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0] < 0.05, "{seen:?}");
    assert!((0.05..1.0).contains(&seen[1]), "{seen:?}");
}
