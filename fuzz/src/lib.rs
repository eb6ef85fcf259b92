//! The fuzz entry points: every target feeds bytes to the batch endpoint through its
//! public API, exactly as a client's batch body or socket message would arrive.
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

use batch_core::{
    Action, BatchEndpoint, ClientMessage, Config, ExecuteError, Executor, Format, Outbox, Outgoing,
    Reply, SocketConfig,
};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;

/// One way of feeding fuzz input to the endpoint, and what must hold of its answer.
pub struct Target {
    /// The target's name: its `fuzz_targets/<name>.rs` and `corpus/<name>/`.
    pub name: &'static str,
    /// Where the input goes.
    entry: Entry,
    /// Checks what the endpoint did with an input beyond "no panic": panics on a bug.
    check: fn(&[u8], &Outcome),
}

/// Where a target's input goes.
enum Entry {
    /// The body of a `POST /batch`.
    Batch {
        /// The batch request's content type, which chooses the decoder.
        content_type: &'static str,
        /// The endpoint's configuration (formats on or off).
        config: fn() -> Config,
        /// The batch body for an input, or `None` when the input means nothing here.
        body: fn(&[u8]) -> Option<Vec<u8>>,
    },
    /// The text of one socket message, decoded by `ClientMessage::decode` and, if
    /// it is a message, run by a session of an endpoint with sockets on.
    Socket,
}

/// What the endpoint did with one input.
#[derive(Debug)]
pub struct Outcome {
    /// The batch response's status; for a socket message, 400 when it does not
    /// decode, the status of its `error` answer, or 200 for any other answer.
    pub status: StatusCode,
    /// The targets (`path?query`) of the ops that reached the executor, in order.
    pub dispatched: Vec<String>,
}

/// Every fuzz target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "native",
        entry: Entry::Batch {
            content_type: "application/json",
            config: Config::default,
            body: as_is,
        },
        check: no_check,
    },
    Target {
        name: "graph",
        entry: Entry::Batch {
            content_type: "application/json",
            config: graph_only,
            body: as_is,
        },
        check: no_check,
    },
    Target {
        name: "facebook",
        entry: Entry::Batch {
            content_type: "application/x-www-form-urlencoded",
            config: facebook_only,
            body: as_is,
        },
        check: no_check,
    },
    Target {
        name: "aggregate",
        entry: Entry::Batch {
            content_type: "application/json",
            config: aggregate_only,
            body: as_is,
        },
        check: no_check,
    },
    Target {
        name: "multipart",
        entry: Entry::Batch {
            content_type: "multipart/mixed; boundary=batch_abc",
            config: multipart_only,
            body: as_is,
        },
        check: no_check,
    },
    Target {
        name: "url",
        entry: Entry::Batch {
            content_type: "application/json",
            config: Config::default,
            body: one_op_url,
        },
        check: only_plain_paths_dispatched,
    },
    Target {
        name: "references",
        entry: Entry::Batch {
            content_type: "application/json",
            config: Config::default,
            body: referring_ops,
        },
        check: references_stay_in_their_segment,
    },
    Target {
        name: "socket",
        entry: Entry::Socket,
        check: socket_answered_by_the_rules,
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
/// in [`DOCUMENTED`], nothing run when refused, and the target's own invariant.
/// Panics (a finding) otherwise.
pub fn run(target: &Target, data: &[u8]) -> Option<Outcome> {
    let outcome = match &target.entry {
        Entry::Batch {
            content_type,
            config,
            body,
        } => batch(content_type, config(), body(data)?)?,
        Entry::Socket => socket(data),
    };
    assert!(
        DOCUMENTED.contains(&outcome.status.as_u16()),
        "undocumented status {}",
        outcome.status
    );
    if outcome.status != StatusCode::OK {
        assert!(
            outcome.dispatched.is_empty(),
            "a refused input ({}) ran ops: {:?}",
            outcome.status,
            outcome.dispatched
        );
    }
    (target.check)(data, &outcome);
    Some(outcome)
}

/// Posts `body` as a batch of `content_type` to an endpoint with `config`.
fn batch(content_type: &str, config: Config, body: Vec<u8>) -> Option<Outcome> {
    let request = Request::post("/batch")
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .ok()?;
    let endpoint = BatchEndpoint::new(config);
    let executor = Recorder::default();
    let status = RUNTIME.with(|runtime| {
        runtime
            .block_on(endpoint.handle(&executor, request))
            .status()
    });
    Some(Outcome {
        status,
        dispatched: executor.seen(),
    })
}

/// Decodes `data` as a socket message and runs it in a session, as the socket
/// endpoint does with a text frame, then checks the answer's JSON: an object with
/// a `type`, echoing the message's `ref`.
fn socket(data: &[u8]) -> Outcome {
    let message = match ClientMessage::decode(data) {
        Ok(message) => message,
        Err(error) => {
            assert!(!error.detail().is_empty(), "a refusal says why");
            assert!(
                error.reference().is_none_or(|r| r.len() <= 64),
                "a refusal echoes no ref over 64 bytes"
            );
            return Outcome {
                status: StatusCode::BAD_REQUEST,
                dispatched: Vec::new(),
            };
        }
    };
    assert!(message.reference().is_none_or(|r| r.len() <= 64));
    let reference = message.reference().map(str::to_owned);
    let config = Config::builder()
        .sockets(SocketConfig::default())
        .build()
        .unwrap_or_else(|err| panic!("the default sockets are a valid configuration: {err}"));
    let endpoint = BatchEndpoint::new(config);
    let executor = Recorder::default();
    let (upgrade, ()) = Request::get("/socket")
        .body(())
        .unwrap_or_else(|err| panic!("a plain upgrade request: {err}"))
        .into_parts();
    let answer = RUNTIME.with(|runtime| {
        runtime.block_on(async {
            let admission = endpoint
                .admit_socket(&executor, &upgrade)
                .await
                .unwrap_or_else(|refusal| panic!("refused: {}", refusal.status()));
            // What the admission's probe of the socket path dispatched is not the
            // message's.
            executor.forget();
            let session = endpoint.session(&executor, admission, Arc::new(Discard));
            session.handle(message).await
        })
    });
    let json: serde_json::Value = serde_json::from_slice(&answer.json())
        .unwrap_or_else(|err| panic!("the answer is not JSON: {err}"));
    assert!(json["type"].is_string(), "an answer has a type: {json}");
    assert_eq!(
        json.get("ref").and_then(serde_json::Value::as_str),
        reference.as_deref(),
        "the answer echoes the ref"
    );
    let status = match answer.reply() {
        Reply::Error { status, .. } => *status,
        _ => StatusCode::OK,
    };
    Outcome {
        status,
        dispatched: executor.seen(),
    }
}

/// Takes a session's messages and drops them: the harness reads the answer that
/// `Session::handle` returns.
struct Discard;

impl Outbox for Discard {
    fn send(&self, _message: Outgoing<'_>) {}
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

impl Recorder {
    /// The targets dispatched so far, in order.
    fn seen(&self) -> Vec<String> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn forget(&self) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.clear();
        }
    }
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
        let is_source = target == SOURCE;
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(target);
        }
        if !is_source {
            return Ok(Response::new(Bytes::new()));
        }
        let body = serde_json::json!({
            "id": 7, "name": "../../whoami", "dots": "..", "slash": "a/b", "space": "a b",
            "list": [1, "x", {"k": "v"}, null, true], "nested": {"q": "?#%&=", "crlf": "a\r\nb"},
            "batch": "batch", "big": "x".repeat(9000),
        });
        Response::builder()
            .status(StatusCode::CREATED)
            .header("content-type", "application/json")
            .header("location", "/things/7")
            .header("etag", "\"v7\"")
            .body(Bytes::from(body.to_string()))
            .map_err(|err| ExecuteError::Failed(err.into()))
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

/// The op the `references` target's ops refer to (id `src`): the recorder answers
/// it 201 with a JSON document of hostile values, a `Location` and an `ETag`.
const SOURCE: &str = "/source";

/// A native batch whose ops refer to a source op: the input's lines, in order, are
/// one op's url, another's header value, a string in a third's JSON body, and a
/// fourth's `if` condition (UTF-8 inputs only; missing lines are left out).
fn referring_ops(data: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text.split('\n');
    let mut ops = vec![serde_json::json!({"id": "src", "method": "POST", "url": SOURCE})];
    if let Some(url) = lines.next() {
        ops.push(serde_json::json!({"url": url}));
    }
    if let Some(value) = lines.next() {
        ops.push(serde_json::json!({"url": "/h", "headers": {"x-ref": value}}));
    }
    if let Some(value) = lines.next() {
        ops.push(
            serde_json::json!({"method": "POST", "url": "/b", "body": {"v": value, "w": [value]}}),
        );
    }
    if let Some(condition) = lines.next() {
        ops.push(serde_json::json!({"url": "/c", "if": condition}));
    }
    serde_json::to_vec(&serde_json::json!({"ops": ops})).ok()
}

/// Whatever the references, every target dispatched is a plain path (see
/// [`assert_plain`]), and no value of the source reaches a path of its own: no
/// target's path names `whoami` unless the input's url does. A value put in the
/// query may name it, percent-encoded into its one parameter (`..%2F..%2Fwhoami`):
/// that is no path.
fn references_stay_in_their_segment(data: &[u8], outcome: &Outcome) {
    let url = String::from_utf8_lossy(data);
    let url = url.split('\n').next().unwrap_or_default();
    for target in &outcome.dispatched {
        assert_plain(target, "/batch");
        let path = target.split('?').next().unwrap_or_default();
        assert!(
            url.contains("whoami") || !path.contains("whoami"),
            "a value left its segment: {target:?}"
        );
    }
}

/// An accepted url is dispatched byte for byte as sent, and it is a plain
/// origin-form target (see [`assert_plain`]).
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
    assert_plain(&url, "/batch");
}

/// A socket message that ran dispatched what its URI names, by a reading of the
/// protocol written independently of `batch_core`'s: a list URI's path without its
/// final `/`, the query kept (a subscribe's only), a plain target that is neither
/// endpoint; nothing for an unsubscribe; the ops of a batch, each a plain target.
fn socket_answered_by_the_rules(data: &[u8], outcome: &Outcome) {
    if outcome.status != StatusCode::OK {
        return;
    }
    let Ok(message) = ClientMessage::decode(data) else {
        panic!("answered 200 but does not decode");
    };
    let (uri, queries) = match message.action() {
        Action::Subscribe { uri } | Action::Resume { uri, .. } => (uri, true),
        Action::Create { uri, .. } | Action::Patch { uri, .. } | Action::Delete { uri } => {
            (uri, false)
        }
        Action::Unsubscribe { .. } => {
            assert!(outcome.dispatched.is_empty(), "an unsubscribe runs nothing");
            return;
        }
        Action::Batch { .. } => {
            for target in &outcome.dispatched {
                assert_plain(target, "/batch");
            }
            return;
        }
        other => panic!("a message the harness does not know: {other:?}"),
    };
    let (path, query) = match uri.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (uri.as_str(), None),
    };
    assert!(
        queries || query.is_none(),
        "a query outside a subscribe: {uri:?}"
    );
    if let Action::Create { .. } = message.action() {
        assert!(path.ends_with('/'), "created in a resource URI: {uri:?}");
    }
    let op_path = match path.strip_suffix('/') {
        Some(list) if !list.is_empty() => list,
        _ => path,
    };
    let expected = match query {
        Some(query) => format!("{op_path}?{query}"),
        None => op_path.to_owned(),
    };
    assert_eq!(outcome.dispatched, [expected.as_str()], "for {uri:?}");
    assert_plain(uri, "/batch");
    assert_plain(uri, "/socket");
}

/// `url` is a plain origin-form target by a check written independently of
/// `batch_core`'s: no scheme or authority, no `//`, no backslash, no encoded slash,
/// no dot segment, no control byte, and not `endpoint` (a lowercase path of
/// letters `a` to `t`) in any case, with or without encoded letters.
fn assert_plain(url: &str, endpoint: &str) {
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
    let mut unescaped = lower;
    for letter in b'a'..=b't' {
        let plain = char::from(letter).to_string();
        for escaped in [letter, letter.to_ascii_uppercase()] {
            unescaped = unescaped.replace(&format!("%{escaped:02x}"), &plain);
        }
    }
    assert!(
        unescaped.trim_end_matches('/') != endpoint,
        "the endpoint {endpoint} itself: {url:?}"
    );
}
