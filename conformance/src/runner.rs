//! Runs scenarios over real HTTP and reports which failed and why.

use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::client::{Client, Exchange};
use crate::matcher::{self, Captures, Mismatch};
use crate::scenario::{self, BodyPart, Scenario, ScenarioError, Step};

/// The most mismatches listed for one failing step.
const MAX_MISMATCHES: usize = 6;

/// Why the suite could not run at all (a failing scenario is not an error: see
/// [`Report`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The embedded scenarios are unusable.
    #[error("the scenarios cannot be loaded: {0}")]
    Scenarios(#[from] ScenarioError),
    /// The base URL is not `http://host:port`.
    #[error("the base url must look like http://127.0.0.1:8080, got {0:?}")]
    BaseUrl(String),
    /// The runtime for the client could not start.
    #[error("the client runtime could not start: {0}")]
    Runtime(#[from] std::io::Error),
}

/// What happened to one scenario.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: String,
    /// The file it comes from.
    pub file: &'static str,
    /// Why it failed, on one line; `None` when it passed.
    pub failure: Option<String>,
}

/// The outcome of every scenario run against one adapter.
///
/// Its `Display` prints one line per failing scenario, then
/// `{adapter}: N passed, M failed`.
#[derive(Debug, Clone)]
pub struct Report {
    adapter: String,
    outcomes: Vec<Outcome>,
}

impl Report {
    /// How many scenarios passed.
    pub fn passed(&self) -> usize {
        self.outcomes.len() - self.failed()
    }

    /// How many scenarios failed.
    pub fn failed(&self) -> usize {
        self.failures().count()
    }

    /// The scenarios that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| o.failure.is_some())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for outcome in self.failures() {
            let failure = outcome.failure.as_deref().unwrap_or_default();
            writeln!(f, "FAIL {} [{}]: {failure}", outcome.scenario, outcome.file)?;
        }
        write!(
            f,
            "{}: {} passed, {} failed",
            self.adapter,
            self.passed(),
            self.failed()
        )
    }
}

/// Runs every scenario against the server at `base_url` (such as
/// `http://127.0.0.1:8080`), one after another, and reports under the name `adapter`.
///
/// Blocks on a runtime of its own: call it from synchronous code.
pub fn run(base_url: &str, adapter: &str) -> Result<Report, RunError> {
    run_only(base_url, adapter, "")
}

/// Like [`run`], for the scenarios whose name contains `name_contains`.
///
/// Scenarios that need a format the default configuration switches off are left
/// out; [`run_requiring`] runs them.
pub fn run_only(base_url: &str, adapter: &str, name_contains: &str) -> Result<Report, RunError> {
    run_filtered(base_url, adapter, |s| {
        s.requires_format.is_none() && s.name.contains(name_contains)
    })
}

/// Runs the scenarios that need `format` enabled (`"facebook"`), against a server
/// whose configuration enables it.
pub fn run_requiring(base_url: &str, adapter: &str, format: &str) -> Result<Report, RunError> {
    run_filtered(base_url, adapter, |s| {
        s.requires_format.as_deref() == Some(format)
    })
}

fn run_filtered(
    base_url: &str,
    adapter: &str,
    keep: impl Fn(&Scenario) -> bool,
) -> Result<Report, RunError> {
    let valid_base = base_url
        .parse::<http::Uri>()
        .is_ok_and(|uri| uri.scheme_str() == Some("http") && uri.authority().is_some());
    if !valid_base {
        return Err(RunError::BaseUrl(base_url.to_owned()));
    }
    let scenarios: Vec<Scenario> = scenario::load()?.into_iter().filter(|s| keep(s)).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = Client::new(base_url);
    let mut outcomes = Vec::with_capacity(scenarios.len());
    // One at a time: scenarios share the server's state (the request counter).
    for scenario in scenarios {
        let failure = runtime.block_on(run_scenario(&client, &scenario)).err();
        outcomes.push(Outcome {
            scenario: scenario.name,
            file: scenario.file,
            failure,
        });
    }
    Ok(Report {
        adapter: adapter.to_owned(),
        outcomes,
    })
}

async fn run_scenario(client: &Client, scenario: &Scenario) -> Result<(), String> {
    let mut captures = Captures::default();
    for (index, step) in scenario.steps.iter().enumerate() {
        run_step(client, step, &mut captures).await.map_err(|why| {
            format!(
                "step {} ({} {}): {why}",
                index + 1,
                step.request.method,
                step.request.path
            )
        })?;
    }
    Ok(())
}

async fn run_step(client: &Client, step: &Step, captures: &mut Captures) -> Result<(), String> {
    let request = &step.request;
    let path = captures.interpolate(&request.path)?;
    let mut headers = Vec::with_capacity(request.headers.len() + 1);
    for (name, value) in &request.headers {
        headers.push((name.clone(), captures.interpolate(value)?));
    }
    let body = if let Some(json) = &request.body {
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("content-type".to_owned(), "application/json".to_owned()));
        }
        let json = interpolate_json(json, captures)?;
        Bytes::from(serde_json::to_vec(&json).map_err(|e| e.to_string())?)
    } else if let Some(text) = &request.body_text {
        Bytes::from(captures.interpolate(text)?)
    } else if let Some(parts) = &request.body_parts {
        Bytes::from(BodyPart::assemble(parts))
    } else {
        Bytes::new()
    };
    let exchange = client
        .send(&request.method, &path, &headers, body)
        .await
        .map_err(|err| err.to_string())?;
    compare(step, &exchange, captures)
}

/// Checks one response against its step, first taking the step's captures.
fn compare(step: &Step, exchange: &Exchange, captures: &mut Captures) -> Result<(), String> {
    let expect = &step.expect;
    let headers = header_object(&exchange.headers);
    let (body, body_base64) = classify(exchange);
    let checks = [
        (&expect.headers, Some(&headers), "headers"),
        (&expect.body, Some(&body), "body"),
        (&expect.body_base64, body_base64.as_ref(), "body_base64"),
    ];
    for (matcher, actual, _) in &checks {
        if let Some(matcher) = matcher {
            matcher::collect_captures(matcher, *actual, captures);
        }
    }
    let mut problems: Vec<String> = Vec::new();
    if exchange.status.as_u16() != expect.status {
        problems.push(format!(
            "status: expected {}, got {}",
            expect.status,
            exchange.status.as_u16()
        ));
    }
    for (matcher, actual, part) in checks {
        let Some(matcher) = matcher else { continue };
        problems.extend(
            matcher::check(matcher, actual, captures)
                .into_iter()
                .map(|m| Mismatch {
                    path: prefixed(part, &m.path),
                    ..m
                })
                .map(|m| m.to_string()),
        );
    }
    let elapsed_ms = exchange.elapsed.as_millis();
    if let Some(max) = step
        .max_elapsed_ms
        .filter(|&max| elapsed_ms > u128::from(max))
    {
        problems.push(format!("took {elapsed_ms} ms, expected at most {max} ms"));
    }
    if let Some(min) = step
        .min_elapsed_ms
        .filter(|&min| elapsed_ms < u128::from(min))
    {
        problems.push(format!("took {elapsed_ms} ms, expected at least {min} ms"));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let more = problems.len().saturating_sub(MAX_MISMATCHES);
    problems.truncate(MAX_MISMATCHES);
    if more > 0 {
        problems.push(format!("and {more} more"));
    }
    Err(format!(
        "{} | response: {} {}",
        problems.join("; "),
        exchange.status.as_u16(),
        matcher::short(&body)
    ))
}

fn prefixed(part: &str, path: &str) -> String {
    if path.is_empty() {
        part.to_owned()
    } else {
        format!("{part}/{path}")
    }
}

/// Headers as an object of lower-case names to values, repeated ones joined with `", "`.
fn header_object(headers: &http::HeaderMap) -> Value {
    let mut object = Map::new();
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        object.insert(name.as_str().to_owned(), Value::String(joined));
    }
    Value::Object(object)
}

/// The body as the matchers see it: JSON for a JSON content type that parses, else
/// the UTF-8 text, else `null`; and, when not empty, its base64.
fn classify(exchange: &Exchange) -> (Value, Option<Value>) {
    let bytes = &exchange.body;
    if bytes.is_empty() {
        return (Value::Null, None);
    }
    let base64 = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    let is_json = exchange
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_content_type);
    let parsed = is_json
        .then(|| serde_json::from_slice::<Value>(bytes).ok())
        .flatten();
    let body = match (parsed, std::str::from_utf8(bytes)) {
        (Some(json), _) => json,
        (None, Ok(text)) => Value::String(text.to_owned()),
        (None, Err(_)) => Value::Null,
    };
    (body, Some(base64))
}

/// Whether a content type is JSON: `application/json` or any `*/*+json`, with or
/// without parameters.
///
/// The fixture's `/echo` parses request bodies by the same rule, but the runner keeps
/// its own copy: it checks servers built without the `fixture` crate.
fn is_json_content_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// Replaces `${name}` in every string of a request body.
fn interpolate_json(value: &Value, captures: &Captures) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => Value::String(captures.interpolate(text)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| interpolate_json(item, captures))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), interpolate_json(v, captures)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}
