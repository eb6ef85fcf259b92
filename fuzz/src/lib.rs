//! The fuzz entry points: every target feeds bytes to the batch endpoint through its
//! public API, exactly as a client's body would arrive.
//!
//! This file is shared: the cargo-fuzz targets call [`run`], and batch-core's
//! `tests/fuzz_corpus.rs` and `tests/decoders_proptest.rs` include it with
//! `#[path]` to replay the committed corpus and to run property tests, so
//! `cargo test` checks the same entry points the fuzzer explores. It may therefore
//! only use crates batch-core's tests have: batch-core, bytes, http,
//! http-body-util, serde_json and tokio.
//!
//! Adding a target is one entry in [`TARGETS`], one three-line file in
//! `fuzz_targets/`, one `[[bin]]` in `Cargo.toml` and a seed or two in
//! `corpus/<name>/`.

use std::sync::{Arc, Mutex};

use batch_core::{BatchEndpoint, Config, ExecuteError, Executor, Format};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;

/// One way of turning fuzz input into a batch request.
pub struct Target {
    /// The target's name: its `fuzz_targets/<name>.rs` and `corpus/<name>/`.
    pub name: &'static str,
    /// The batch request's content type, which chooses the decoder.
    content_type: &'static str,
    /// The endpoint's configuration (formats on or off).
    config: fn() -> Config,
    /// The batch body for an input, or `None` when the input means nothing here.
    body: fn(&[u8]) -> Option<Vec<u8>>,
    /// Checks what the endpoint did with an input beyond "no panic": panics on a bug.
    check: fn(&[u8], &Outcome),
}

/// What the endpoint did with one input.
#[derive(Debug)]
pub struct Outcome {
    /// The batch response's status.
    pub status: StatusCode,
    /// The targets (`path?query`) of the ops that reached the executor, in order.
    pub dispatched: Vec<String>,
}

/// Every fuzz target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "native",
        content_type: "application/json",
        config: Config::default,
        body: as_is,
        check: no_check,
    },
    Target {
        name: "graph",
        content_type: "application/json",
        config: graph_only,
        body: as_is,
        check: no_check,
    },
    Target {
        name: "facebook",
        content_type: "application/x-www-form-urlencoded",
        config: facebook_only,
        body: as_is,
        check: no_check,
    },
    Target {
        name: "aggregate",
        content_type: "application/json",
        config: aggregate_only,
        body: as_is,
        check: no_check,
    },
    Target {
        name: "multipart",
        content_type: "multipart/mixed; boundary=batch_abc",
        config: multipart_only,
        body: as_is,
        check: no_check,
    },
    Target {
        name: "url",
        content_type: "application/json",
        config: Config::default,
        body: one_op_url,
        check: only_plain_paths_dispatched,
    },
];

/// Runs the target called `name` on `data` (see [`run`]); the fuzz targets' body.
pub fn fuzz(name: &str, data: &[u8]) {
    match TARGETS.iter().find(|t| t.name == name) {
        Some(target) => {
            run(target, data);
        }
        None => panic!("no fuzz target {name:?} in TARGETS"),
    }
}

/// The statuses a batch request may be answered with when nothing is overloaded and
/// no hook is configured: answered, or refused as malformed, too large, of an
/// unsupported type, or invalid.
pub const DOCUMENTED: [u16; 5] = [200, 400, 413, 415, 422];

/// Sends `data` to the endpoint as `target` frames it and checks the answer: a status
/// in [`DOCUMENTED`] and the target's own invariant. Panics (a finding) otherwise.
pub fn run(target: &Target, data: &[u8]) -> Option<Outcome> {
    let body = (target.body)(data)?;
    let request = Request::post("/batch")
        .header(http::header::CONTENT_TYPE, target.content_type)
        .body(Full::new(Bytes::from(body)))
        .ok()?;
    let endpoint = BatchEndpoint::new((target.config)());
    let executor = Recorder::default();
    let status = RUNTIME.with(|runtime| {
        runtime
            .block_on(endpoint.handle(&executor, request))
            .status()
    });
    let dispatched = executor.seen.lock().map(|s| s.clone()).unwrap_or_default();
    let outcome = Outcome { status, dispatched };
    assert!(
        DOCUMENTED.contains(&outcome.status.as_u16()),
        "undocumented status {}",
        outcome.status
    );
    if outcome.status != StatusCode::OK {
        assert!(
            outcome.dispatched.is_empty(),
            "a refused batch ({}) ran ops: {:?}",
            outcome.status,
            outcome.dispatched
        );
    }
    (target.check)(data, &outcome);
    Some(outcome)
}

thread_local! {
    /// One runtime per thread: building one per input would dominate the fuzzer's time.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap_or_else(|err| panic!("no runtime for the fuzz harness: {err}"));
}

/// Answers every op 200 with an empty body and remembers its target.
#[derive(Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Executor for Recorder {
    async fn execute(
        &self,
        request: Request<Bytes>,
        _max_response_body: usize,
    ) -> Result<Response<Bytes>, ExecuteError> {
        let target = request
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_default();
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(target);
        }
        Ok(Response::new(Bytes::new()))
    }
}

/// A configuration accepting `format` alone, so every input reaches its decoder or
/// is refused with 415 before any decoder runs.
fn only(format: Format) -> Config {
    [
        Format::Native,
        Format::Graph,
        Format::Facebook,
        Format::Aggregate,
        Format::Multipart,
    ]
    .into_iter()
    .fold(Config::builder(), |builder, f| {
        builder.format(f, f == format)
    })
    .build()
    .unwrap_or_else(|err| panic!("{format:?} alone is a valid configuration: {err}"))
}

fn graph_only() -> Config {
    only(Format::Graph)
}

fn facebook_only() -> Config {
    only(Format::Facebook)
}

fn aggregate_only() -> Config {
    only(Format::Aggregate)
}

fn multipart_only() -> Config {
    only(Format::Multipart)
}

fn as_is(data: &[u8]) -> Option<Vec<u8>> {
    Some(data.to_vec())
}

fn no_check(_: &[u8], _: &Outcome) {}

/// A one-op native batch whose url is the input (which must be UTF-8 to be a JSON
/// string at all).
fn one_op_url(data: &[u8]) -> Option<Vec<u8>> {
    let url = std::str::from_utf8(data).ok()?;
    serde_json::to_vec(&serde_json::json!({"ops": [{"url": url}]})).ok()
}

/// An accepted url is dispatched byte for byte as sent, and it is a plain origin-form
/// target by a check written independently of `batch_core`'s: no scheme or
/// authority, no `//`, no backslash, no encoded slash, no dot segment, no control
/// byte, not the batch endpoint.
fn only_plain_paths_dispatched(data: &[u8], outcome: &Outcome) {
    if outcome.status != StatusCode::OK {
        return;
    }
    let url = String::from_utf8_lossy(data);
    assert_eq!(
        outcome.dispatched,
        [url.as_ref()],
        "the dispatched target differs from the url"
    );
    let path = url.split('?').next().unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    assert!(path.starts_with('/'), "not origin-form: {url:?}");
    assert!(!path.contains("//"), "empty segment: {url:?}");
    assert!(!url.contains('\\'), "backslash: {url:?}");
    assert!(
        !lower.contains("%2f") && !lower.contains("%5c"),
        "encoded slash: {url:?}"
    );
    assert!(
        !url.bytes().any(|b| b <= b' ' || b >= 0x7f),
        "control, space or non-ASCII byte: {url:?}"
    );
    for segment in lower.split('/') {
        let segment = segment.replace("%2e", ".");
        assert!(segment != "." && segment != "..", "dot segment: {url:?}");
    }
    let unescaped = lower
        .replace("%61", "a")
        .replace("%62", "b")
        .replace("%63", "c");
    let unescaped = unescaped.replace("%74", "t").replace("%68", "h");
    assert!(
        unescaped.trim_end_matches('/') != "/batch",
        "the batch endpoint itself: {url:?}"
    );
}
