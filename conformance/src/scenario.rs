//! Scenarios as data: the types of `scenarios/**/*.json` and their loading.
//!
//! The files are embedded in the binary, so the suite runs from anywhere; the format
//! is described in `scenarios/README.md`.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
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
        "aggregate/aggregate.json",
        include_str!("../scenarios/aggregate/aggregate.json"),
    ),
    (
        "multipart/multipart.json",
        include_str!("../scenarios/multipart/multipart.json"),
    ),
    (
        "facebook/facebook.json",
        include_str!("../scenarios/facebook/facebook.json"),
    ),
];

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
    /// The scenarios, run in this order.
    pub scenarios: Vec<Scenario>,
}

/// One behaviour a user relies on, checked by one or more HTTP exchanges.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A unique name, `topic.what` (the file it comes from is prefixed on load).
    pub name: String,
    /// One sentence: what a user relies on.
    pub description: String,
    /// The exchanges, run in order; captures of one are visible to the next.
    pub steps: Vec<Step>,
    /// The file the scenario was loaded from, such as `native/ops.json`.
    #[serde(skip)]
    pub file: &'static str,
    /// The file's `requires_format`.
    #[serde(skip)]
    pub requires_format: Option<String>,
}

/// One HTTP request and what its response must look like.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
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
    /// A request has more than one body, or an unusable `body_parts`.
    #[error("{file}: scenario {scenario}: {problem}")]
    Request {
        /// The file.
        file: &'static str,
        /// The scenario.
        scenario: String,
        /// What is wrong.
        problem: &'static str,
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
    let request_error = |problem| ScenarioError::Request {
        file: scenario.file,
        scenario: scenario.name.clone(),
        problem,
    };
    for step in &scenario.steps {
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
            let pads = parts
                .iter()
                .filter(|p| matches!(p, BodyPart::Pad { .. }))
                .count();
            let one_byte = parts.iter().all(|p| match p {
                BodyPart::Pad { with, .. } => with.len() == 1,
                _ => true,
            });
            if pads > 1 || !one_byte {
                return Err(request_error(
                    "body_parts has at most one pad, and pads with a one-byte string",
                ));
            }
        }
        let expect = &step.expect;
        for matcher in [&expect.headers, &expect.body, &expect.body_base64]
            .into_iter()
            .flatten()
        {
            matcher::validate(matcher).map_err(|source| ScenarioError::Matcher {
                file: scenario.file,
                scenario: scenario.name.clone(),
                source,
            })?;
        }
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
        for group in ["native", "fixture", "security"] {
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
