//! The demo's metrics: what batch-core records, kept by a Prometheus recorder and
//! answered at `GET /metrics` in Prometheus' text format.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

/// Buckets of the duration histograms, in seconds: from an op answered in half a
/// millisecond to a batch at the default 60 s deadline.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Buckets of the batch size histogram, in ops.
const OPS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// How often histograms are drained when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// Installs the process's recorder and returns what renders `/metrics`.
pub fn install() -> Result<fixture::Metrics, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS)?
        .set_buckets_for_metric(Matcher::Full("batch_size_ops".to_owned()), OPS)?
        .install_recorder()?;
    batch_core::describe_metrics();
    let upkeep = handle.clone();
    // Without the exporter's own HTTP listener nothing else drains the histograms'
    // samples between scrapes.
    std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            }
        })
        .map_err(|err| BuildError::FailedToCreateHTTPListener(err.to_string()))?;
    Ok(Arc::new(move || handle.render()))
}
