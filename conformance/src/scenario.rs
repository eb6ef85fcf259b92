//! Scenarios as data: the types of `scenarios/**/*.json` and their loading.
//!
//! The files are embedded in the binary, so the suite runs from anywhere; the format
//! is described in `scenarios/README.md`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use thiserror::Error;

use crate::matcher::{self, MatcherError};

/// Every scenario file, as `(group/file name, contents)`.
const FILES: &[(&str, &str)] = &[
    (
        "fixture/api.json",
        include_str!("../scenarios/fixture/api.json"),
    ),
    (
        "native/ops.json",
        include_str!("../scenarios/native/ops.json"),
    ),
    (
        "native/options.json",
        include_str!("../scenarios/native/options.json"),
    ),
    (
        "native/errors.json",
        include_str!("../scenarios/native/errors.json"),
    ),
    (
        "native/urls.json",
        include_str!("../scenarios/native/urls.json"),
    ),
    (
        "native/headers.json",
        include_str!("../scenarios/native/headers.json"),
    ),
    (
        "native/execution.json",
        include_str!("../scenarios/native/execution.json"),
    ),
    (
        "native/bodies.json",
        include_str!("../scenarios/native/bodies.json"),
    ),
    (
        "native/discovery.json",
        include_str!("../scenarios/native/discovery.json"),
    ),
    (
        "native/references.json",
        include_str!("../scenarios/native/references.json"),
    ),
    (
        "native/conditions.json",
        include_str!("../scenarios/native/conditions.json"),
    ),
    (
        "native/streaming.json",
        include_str!("../scenarios/native/streaming.json"),
    ),
    (
        "security/urls.json",
        include_str!("../scenarios/security/urls.json"),
    ),
    (
        "security/nesting.json",
        include_str!("../scenarios/security/nesting.json"),
    ),
    (
        "security/headers.json",
        include_str!("../scenarios/security/headers.json"),
    ),
    (
        "security/content_types.json",
        include_str!("../scenarios/security/content_types.json"),
    ),
    (
        "security/faults.json",
        include_str!("../scenarios/security/faults.json"),
    ),
    (
        "graph/graph.json",
        include_str!("../scenarios/graph/graph.json"),
    ),
    (
        "graph/references.json",
        include_str!("../scenarios/graph/references.json"),
    ),
    (
        "aggregate/aggregate.json",
        include_str!("../scenarios/aggregate/aggregate.json"),
    ),
    (
        "multipart/multipart.json",
        include_str!("../scenarios/multipart/multipart.json"),
    ),
    (
        "multipart/references.json",
        include_str!("../scenarios/multipart/references.json"),
    ),
    (
        "facebook/facebook.json",
        include_str!("../scenarios/facebook/facebook.json"),
    ),
    (
        "facebook/references.json",
        include_str!("../scenarios/facebook/references.json"),
    ),
    (
        "socket/protocol.json",
        include_str!("../scenarios/socket/protocol.json"),
    ),
    (
        "socket/events.json",
        include_str!("../scenarios/socket/events.json"),
    ),
    (
        "socket/errors.json",
        include_str!("../scenarios/socket/errors.json"),
    ),
    (
        "socket/identity.json",
        include_str!("../scenarios/socket/identity.json"),
    ),
    (
        "socket/resume.json",
        include_str!("../scenarios/socket/resume.json"),
    ),
    (
        "socket/revoke.json",
        include_str!("../scenarios/socket/revoke.json"),
    ),
    (
        "socket/limits.json",
        include_str!("../scenarios/socket/limits.json"),
    ),
];

/// The path socket steps open their sockets at: the default socket path.
pub const SOCKET_PATH: &str = "/socket";

/// How long a `receive`, `receive_unordered` or `closed` step waits when it gives
/// no `timeout_ms`: generous, it bounds a wait for behaviour, not speed.
pub const DEFAULT_SOCKET_TIMEOUT: Duration = Duration::from_secs(5);

/// One file of scenarios on one topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// What the file's scenarios have in common.
    pub description: String,
    /// A wire format the scenarios need that the default configuration switches
    /// off (`"facebook"`); such scenarios run only through [`crate::run_requiring`].
    #[serde(default)]
    pub requires_format: Option<String>,
    /// Something the scenarios need that a server may not serve (`"sockets"`); they
    /// run by default, and a run may leave them out ([`crate::Selection::skip`]).
    #[serde(default)]
    pub requires: Option<Requirement>,
    /// The scenarios, run in this order.
    pub scenarios: Vec<Scenario>,
}

/// Something beyond the batch endpoint that some scenarios need and a server may
/// not serve; a run against such a server leaves those scenarios out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Requirement {
    /// The socket endpoint at [`SOCKET_PATH`], with the default socket
    /// configuration: the scenarios with socket steps.
    Sockets,
    /// The socket endpoint, with subscriptions checked again before every event
    /// (`SocketConfig::recheck` zero; the demo's `--socket-recheck 0`): the
    /// revocation scenarios, which may have socket steps. Left out with
    /// [`Sockets`](Requirement::Sockets) too.
    Recheck,
}

impl Requirement {
    /// Every requirement, as `CONFORMANCE_SKIP` and `--skip` name them.
    pub const ALL: [Requirement; 2] = [Requirement::Sockets, Requirement::Recheck];

    /// Its name in scenario files, `CONFORMANCE_SKIP` and `--skip`: `sockets`,
    /// `recheck`.
    pub fn name(self) -> &'static str {
        match self {
            Requirement::Sockets => "sockets",
            Requirement::Recheck => "recheck",
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no [`Requirement`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown requirement {0:?}: the known ones are sockets and recheck")]
pub struct UnknownRequirement(pub String);

impl FromStr for Requirement {
    type Err = UnknownRequirement;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|requirement| requirement.name() == name)
            .ok_or_else(|| UnknownRequirement(name.to_owned()))
    }
}

/// One behaviour a user relies on, checked by HTTP exchanges and socket actions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A unique name, `topic.what`.
    pub name: String,
    /// One sentence: what a user relies on.
    pub description: String,
    /// The steps, run in order; captures of one are visible to the next.
    pub steps: Vec<Step>,
    /// The file the scenario was loaded from, such as `native/ops.json`.
    #[serde(skip)]
    pub file: &'static str,
    /// The file's `requires_format`.
    #[serde(skip)]
    pub requires_format: Option<String>,
    /// The file's `requires`.
    #[serde(skip)]
    pub requires: Option<Requirement>,
}

/// One step of a scenario: an HTTP exchange, or an action on one of the scenario's
/// sockets (a step with a `socket` member).
#[derive(Debug, Clone)]
pub enum Step {
    /// One HTTP request and what its response must look like.
    Http(HttpStep),
    /// One action on a socket.
    Socket(SocketStep),
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Told apart by one member, so that each kind reports its own unknown fields.
        let value = Value::deserialize(deserializer)?;
        let step = if value.get("socket").is_some() {
            serde_json::from_value(value).map(Step::Socket)
        } else {
            serde_json::from_value(value).map(Step::Http)
        };
        step.map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Step {
    /// What the step does, for a failure line: `POST /batch`, `socket a receive`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Http(step) => write!(f, "{} {}", step.request.method, step.request.path),
            Step::Socket(step) => write!(f, "socket {} {}", step.socket, step.action.name()),
        }
    }
}

/// One HTTP request and what its response must look like.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    /// The request to send.
    pub request: HttpRequest,
    /// What the response must look like.
    pub expect: Expectation,
    /// The response must be complete within this many milliseconds.
    #[serde(default)]
    pub max_elapsed_ms: Option<u64>,
    /// The response must take at least this many milliseconds.
    #[serde(default)]
    pub min_elapsed_ms: Option<u64>,
    /// The records of a streamed answer, read as they arrive, in order: each must
    /// match its own, and no more may come.
    #[serde(default)]
    pub records: Option<Vec<RecordExpectation>>,
}

/// One record of a streamed answer: an NDJSON line (its JSON), or a server-sent
/// event (`{"event": name, "data": its JSON}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordExpectation {
    /// A matcher on the record.
    pub record: Value,
    /// The record must have arrived within this many milliseconds of sending the
    /// request, whatever is still to come.
    #[serde(default)]
    pub max_elapsed_ms: Option<u64>,
}

/// A request of a step; every string in it may use `${capture}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    /// The method, `GET` when absent.
    #[serde(default = "get")]
    pub method: String,
    /// The path and query, appended to the base URL.
    pub path: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body, sent with `content-type: application/json` unless `headers` set one.
    #[serde(default, deserialize_with = "present")]
    pub body: Option<Value>,
    /// A body sent as these exact bytes.
    #[serde(default)]
    pub body_text: Option<String>,
    /// A body assembled from pieces, for large or deeply nested documents.
    #[serde(default)]
    pub body_parts: Option<Vec<BodyPart>>,
}

fn get() -> String {
    "GET".to_owned()
}

/// Keeps a JSON `null` as `Some(Value::Null)`: `"body": null` means "a null body".
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// One piece of a `body_parts` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BodyPart {
    /// Text sent as it is.
    Text(String),
    /// `repeat` sent `times` times.
    Repeat {
        /// The text to repeat.
        repeat: String,
        /// How often.
        times: usize,
    },
    /// The one-byte `with` repeated until the whole body is `pad_to_bytes` long.
    Pad {
        /// The length of the whole body, in bytes.
        pad_to_bytes: usize,
        /// A one-byte string to pad with.
        with: String,
    },
}

/// What the response of a step must look like; absent parts are not checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The status code.
    pub status: u16,
    /// A matcher on the headers as an object of lower-case names to values (repeated
    /// headers joined with `", "`).
    #[serde(default)]
    pub headers: Option<Value>,
    /// A matcher on the body: parsed JSON for a JSON content type, else the UTF-8
    /// text, `null` when empty or not UTF-8.
    #[serde(default, deserialize_with = "present")]
    pub body: Option<Value>,
    /// A matcher on the body as standard base64.
    #[serde(default)]
    pub body_base64: Option<Value>,
}

impl Expectation {
    /// The matchers of the expectation.
    fn matchers(&self) -> impl Iterator<Item = &Value> {
        [&self.headers, &self.body, &self.body_base64]
            .into_iter()
            .flatten()
    }
}

/// One action on a socket of the scenario, named by `socket`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSocketStep")]
pub struct SocketStep {
    /// The socket's name within its scenario, such as `a`.
    pub socket: String,
    /// What to do with it.
    pub action: SocketAction,
}

/// What a socket step does.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SocketAction {
    /// `open`: a WebSocket upgrade at [`SOCKET_PATH`] with `headers`; the answer
    /// must match `expect` (by default, status 101, and the socket is open).
    Open {
        /// Request headers besides the upgrade's own.
        headers: BTreeMap<String, String>,
        /// What the answer must look like.
        expect: Expectation,
    },
    /// `send`, `send_text`, `send_parts`, `send_binary`: one message to the server.
    Send(Outgoing),
    /// `receive`: the next message must be text matching the matcher.
    Receive {
        /// A matcher on the message, parsed as JSON (else a string).
        matcher: Value,
        /// How long to wait for it.
        timeout: Duration,
    },
    /// `receive_unordered`: the next messages, one per matcher, in any order.
    ReceiveUnordered {
        /// One matcher per message; each message matches a matcher of its own.
        matchers: Vec<Value>,
        /// How long to wait for all of them.
        timeout: Duration,
    },
    /// `silent_ms`: no message, and no close, for that long.
    Silent(Duration),
    /// `closed`: the server closes the socket, with `code` when given, before
    /// sending any other message.
    Closed {
        /// The close frame's status code.
        code: Option<u16>,
        /// How long to wait for it.
        timeout: Duration,
    },
}

impl SocketAction {
    /// The member that names the action in a step.
    pub fn name(&self) -> &'static str {
        match self {
            SocketAction::Open { .. } => "open",
            SocketAction::Send(Outgoing::Json(_)) => "send",
            SocketAction::Send(Outgoing::Text(_)) => "send_text",
            SocketAction::Send(Outgoing::Parts(_)) => "send_parts",
            SocketAction::Send(Outgoing::Binary(_)) => "send_binary",
            SocketAction::Receive { .. } => "receive",
            SocketAction::ReceiveUnordered { .. } => "receive_unordered",
            SocketAction::Silent(_) => "silent_ms",
            SocketAction::Closed { .. } => "closed",
        }
    }

    /// The matchers the action holds.
    fn matchers(&self) -> Vec<&Value> {
        match self {
            SocketAction::Open { expect, .. } => expect.matchers().collect(),
            SocketAction::Receive { matcher, .. } => vec![matcher],
            SocketAction::ReceiveUnordered { matchers, .. } => matchers.iter().collect(),
            SocketAction::Send(_) | SocketAction::Silent(_) | SocketAction::Closed { .. } => {
                Vec::new()
            }
        }
    }
}

/// A message a socket step sends; every string in it may use `${capture}`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Outgoing {
    /// `send`: JSON, in a text frame.
    Json(Value),
    /// `send_text`: this exact text, in a text frame.
    Text(String),
    /// `send_parts`: text assembled from pieces (as `body_parts`), in a text frame.
    Parts(Vec<BodyPart>),
    /// `send_binary`: the UTF-8 bytes of this string, in a binary frame.
    Binary(String),
}

/// What a `closed` step expects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Closed {
    #[serde(default)]
    code: Option<u16>,
}

/// What an `open` step sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Open {
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// A socket step as written: exactly one action member, and the members that go
/// with it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSocketStep {
    socket: String,
    #[serde(default)]
    open: Option<Open>,
    #[serde(default)]
    expect: Option<Expectation>,
    #[serde(default, deserialize_with = "present")]
    send: Option<Value>,
    #[serde(default)]
    send_text: Option<String>,
    #[serde(default)]
    send_parts: Option<Vec<BodyPart>>,
    #[serde(default)]
    send_binary: Option<String>,
    #[serde(default, deserialize_with = "present")]
    receive: Option<Value>,
    #[serde(default)]
    receive_unordered: Option<Vec<Value>>,
    #[serde(default)]
    silent_ms: Option<u64>,
    #[serde(default)]
    closed: Option<Closed>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

impl TryFrom<RawSocketStep> for SocketStep {
    type Error = String;

    fn try_from(raw: RawSocketStep) -> Result<Self, String> {
        let timeout = raw
            .timeout_ms
            .map_or(DEFAULT_SOCKET_TIMEOUT, Duration::from_millis);
        let mut expect = raw.expect;
        let mut actions = Vec::new();
        if let Some(open) = raw.open {
            let expect = expect.take().unwrap_or(Expectation {
                status: 101,
                headers: None,
                body: None,
                body_base64: None,
            });
            actions.push(SocketAction::Open {
                headers: open.headers,
                expect,
            });
        }
        let sends = [
            raw.send.map(Outgoing::Json),
            raw.send_text.map(Outgoing::Text),
            raw.send_parts.map(Outgoing::Parts),
            raw.send_binary.map(Outgoing::Binary),
        ];
        actions.extend(sends.into_iter().flatten().map(SocketAction::Send));
        if let Some(matcher) = raw.receive {
            actions.push(SocketAction::Receive { matcher, timeout });
        }
        if let Some(matchers) = raw.receive_unordered {
            if matchers.is_empty() {
                return Err("receive_unordered needs at least one matcher".to_owned());
            }
            actions.push(SocketAction::ReceiveUnordered { matchers, timeout });
        }
        if let Some(ms) = raw.silent_ms {
            actions.push(SocketAction::Silent(Duration::from_millis(ms)));
        }
        if let Some(closed) = raw.closed {
            actions.push(SocketAction::Closed {
                code: closed.code,
                timeout,
            });
        }
        let action = match actions.len() {
            1 => actions.remove(0),
            _ => {
                return Err(format!(
                    "socket step {:?} needs exactly one of open, send, send_text, send_parts, \
                     send_binary, receive, receive_unordered, silent_ms and closed",
                    raw.socket
                ));
            }
        };
        if expect.is_some() {
            return Err("expect goes with open only".to_owned());
        }
        let waits = matches!(
            action,
            SocketAction::Receive { .. }
                | SocketAction::ReceiveUnordered { .. }
                | SocketAction::Closed { .. }
        );
        if raw.timeout_ms.is_some() && !waits {
            return Err(
                "timeout_ms goes with receive, receive_unordered and closed only".to_owned(),
            );
        }
        Ok(Self {
            socket: raw.socket,
            action,
        })
    }
}

/// A scenario file that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file is not a valid scenario file.
    #[error("{file}: {source}")]
    Parse {
        /// The file.
        file: &'static str,
        /// What is wrong.
        #[source]
        source: serde_json::Error,
    },
    /// A matcher in the file uses the language wrongly.
    #[error("{file}: scenario {scenario}: {source}")]
    Matcher {
        /// The file.
        file: &'static str,
        /// The scenario.
        scenario: String,
        /// What is wrong.
        #[source]
        source: MatcherError,
    },
    /// A request has more than one body, or an unusable `body_parts`; or a socket
    /// step uses a socket that is not open, or is in a file without
    /// `"requires": "sockets"`.
    #[error("{file}: scenario {scenario}: {problem}")]
    Request {
        /// The file.
        file: &'static str,
        /// The scenario.
        scenario: String,
        /// What is wrong.
        problem: String,
    },
    /// Two scenarios share a name.
    #[error("{file}: scenario name {0:?} is used twice", file = .1)]
    DuplicateName(String, &'static str),
}

/// Loads every embedded scenario, checking each is well formed and names are unique.
pub fn load() -> Result<Vec<Scenario>, ScenarioError> {
    let mut all = Vec::new();
    let mut names = HashSet::new();
    for &(file, text) in FILES {
        let parsed: ScenarioFile =
            serde_json::from_str(text).map_err(|source| ScenarioError::Parse { file, source })?;
        for mut scenario in parsed.scenarios {
            scenario.file = file;
            scenario.requires_format.clone_from(&parsed.requires_format);
            scenario.requires = parsed.requires;
            check(&scenario)?;
            if !names.insert(scenario.name.clone()) {
                return Err(ScenarioError::DuplicateName(scenario.name, file));
            }
            all.push(scenario);
        }
    }
    Ok(all)
}

fn check(scenario: &Scenario) -> Result<(), ScenarioError> {
    let request_error = |problem: &str| ScenarioError::Request {
        file: scenario.file,
        scenario: scenario.name.clone(),
        problem: problem.to_owned(),
    };
    // The sockets open at each step, as far as the scenario says.
    let mut open = HashSet::new();
    for step in &scenario.steps {
        let matchers = match step {
            Step::Http(step) => {
                let request = &step.request;
                let bodies = [
                    request.body.is_some(),
                    request.body_text.is_some(),
                    request.body_parts.is_some(),
                ];
                if bodies.iter().filter(|&&b| b).count() > 1 {
                    return Err(request_error(
                        "a request has at most one of body, body_text and body_parts",
                    ));
                }
                if let Some(parts) = &request.body_parts {
                    check_parts(parts).map_err(request_error)?;
                }
                let records = step.records.iter().flatten().map(|r| &r.record);
                step.expect.matchers().chain(records).collect()
            }
            Step::Socket(step) => {
                if scenario.requires.is_none() {
                    return Err(request_error(
                        "a file with socket steps says \"requires\": \"sockets\" (or \"recheck\")",
                    ));
                }
                let name = step.socket.as_str();
                match &step.action {
                    SocketAction::Open { expect, .. } => {
                        if open.contains(name) {
                            return Err(request_error(&format!("socket {name:?} is already open")));
                        }
                        if expect.status == 101 {
                            open.insert(name);
                        }
                    }
                    _ if !open.contains(name) => {
                        return Err(request_error(&format!(
                            "socket {name:?} is used before a step opens it"
                        )));
                    }
                    SocketAction::Send(Outgoing::Parts(parts)) => {
                        check_parts(parts).map_err(request_error)?;
                    }
                    SocketAction::Closed { .. } => {
                        open.remove(name);
                    }
                    _ => {}
                }
                step.action.matchers()
            }
        };
        for matcher in matchers {
            matcher::validate(matcher).map_err(|source| ScenarioError::Matcher {
                file: scenario.file,
                scenario: scenario.name.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// At most one pad, of a one-byte string (so that the parts stay UTF-8 text).
fn check_parts(parts: &[BodyPart]) -> Result<(), &'static str> {
    let pads = parts
        .iter()
        .filter(|p| matches!(p, BodyPart::Pad { .. }))
        .count();
    let one_byte = parts.iter().all(|p| match p {
        BodyPart::Pad { with, .. } => with.len() == 1,
        _ => true,
    });
    if pads > 1 || !one_byte {
        return Err("body_parts and send_parts have at most one pad, of a one-byte string");
    }
    Ok(())
}

impl BodyPart {
    /// Assembles a `body_parts` body; a pad fills what the other parts leave of its
    /// total (nothing when they already reach it).
    pub fn assemble(parts: &[BodyPart]) -> Vec<u8> {
        let fixed: usize = parts
            .iter()
            .map(|part| match part {
                Self::Text(text) => text.len(),
                Self::Repeat { repeat, times } => repeat.len() * times,
                Self::Pad { .. } => 0,
            })
            .sum();
        let mut body = Vec::new();
        for part in parts {
            match part {
                Self::Text(text) => body.extend_from_slice(text.as_bytes()),
                Self::Repeat { repeat, times } => {
                    body.extend_from_slice(repeat.repeat(*times).as_bytes());
                }
                Self::Pad { pad_to_bytes, with } => {
                    body.extend_from_slice(
                        with.repeat(pad_to_bytes.saturating_sub(fixed)).as_bytes(),
                    );
                }
            }
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_file_loads_and_names_are_unique() {
        let scenarios = load().unwrap();
        let native = scenarios
            .iter()
            .filter(|s| s.file.starts_with("native/"))
            .count();
        assert!(native >= 45, "only {native} native scenarios");
        assert!(scenarios.iter().all(|s| !s.steps.is_empty()));
    }

    #[test]
    fn every_file_on_disk_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        for group in ["native", "fixture", "security", "socket"] {
            for entry in std::fs::read_dir(root.join(group)).unwrap() {
                let name = format!("{group}/{}", entry.unwrap().file_name().to_string_lossy());
                assert!(
                    FILES.iter().any(|(file, _)| *file == name),
                    "{name} is not in FILES"
                );
            }
        }
    }

    #[test]
    fn socket_steps_have_exactly_one_action() {
        let step: Step = serde_json::from_value(
            json!({"socket": "a", "receive": {"type": "state"}, "timeout_ms": 100}),
        )
        .unwrap();
        let Step::Socket(step) = step else {
            panic!("a step with `socket` is a socket step")
        };
        assert_eq!(step.socket, "a");
        assert!(matches!(
            step.action,
            SocketAction::Receive { timeout, .. } if timeout == Duration::from_millis(100)
        ));
        let open: Step = serde_json::from_value(json!({"socket": "b", "open": {}})).unwrap();
        assert!(matches!(
            open,
            Step::Socket(SocketStep { action: SocketAction::Open { ref expect, .. }, .. })
                if expect.status == 101
        ));
        for bad in [
            json!({"socket": "a"}),
            json!({"socket": "a", "send": {}, "receive": {}}),
            json!({"socket": "a", "send": {}, "expect": {"status": 101}}),
            json!({"socket": "a", "silent_ms": 5, "timeout_ms": 1}),
            json!({"socket": "a", "recieve": {}}),
            json!({"socket": "a", "receive_unordered": []}),
            json!({"socket": "a", "closed": {"status": 1009}}),
        ] {
            let parsed = serde_json::from_value::<Step>(bad.clone());
            assert!(parsed.is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn sockets_are_opened_before_use_in_files_that_require_them() {
        let scenario = |steps: Value, requires| {
            let mut scenario: Scenario =
                serde_json::from_value(json!({"name": "t.t", "description": "d", "steps": steps}))
                    .unwrap();
            scenario.requires = requires;
            check(&scenario).map_err(|err| err.to_string())
        };
        let sockets = Some(Requirement::Sockets);
        let used = json!([{"socket": "a", "open": {}}, {"socket": "a", "send": {}}]);
        assert!(scenario(used.clone(), sockets).is_ok());
        assert!(scenario(used, None).unwrap_err().contains("requires"));
        let refused = json!([{"socket": "a", "open": {}, "expect": {"status": 403}}, {"socket": "a", "silent_ms": 1}]);
        assert!(
            scenario(refused, sockets)
                .unwrap_err()
                .contains("before a step opens it")
        );
        let closed = json!([{"socket": "a", "open": {}}, {"socket": "a", "closed": {}}, {"socket": "a", "send": {}}]);
        assert!(scenario(closed, sockets).is_err());
        let reopened = json!([{"socket": "a", "open": {}}, {"socket": "a", "open": {}}]);
        assert!(
            scenario(reopened, sockets)
                .unwrap_err()
                .contains("already open")
        );
        let bad_matcher =
            json!([{"socket": "a", "open": {}}, {"socket": "a", "receive": {"$nope": 1}}]);
        assert!(scenario(bad_matcher, sockets).is_err());
    }

    #[test]
    fn requirements_parse_by_name_only() {
        assert_eq!("sockets".parse(), Ok(Requirement::Sockets));
        assert_eq!(
            "socket".parse::<Requirement>(),
            Err(UnknownRequirement("socket".into()))
        );
    }

    #[test]
    fn pads_fill_to_the_exact_total() {
        let parts = vec![
            BodyPart::Text("ab".into()),
            BodyPart::Pad {
                pad_to_bytes: 10,
                with: "x".into(),
            },
            BodyPart::Repeat {
                repeat: "[".into(),
                times: 3,
            },
        ];
        assert_eq!(BodyPart::assemble(&parts), b"abxxxxx[[[");
    }
}
