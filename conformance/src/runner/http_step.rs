//! HTTP steps: one request, and what its response must look like.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::client::{Client, Exchange};
use crate::matcher::{self, Captures, Mismatch};
use crate::scenario::{BodyPart, Expectation, HttpStep, RecordExpectation};

/// The most mismatches listed for one failing step.
const MAX_MISMATCHES: usize = 6;

/// Sends the step's request and checks the response.
pub(super) async fn run(
    client: &Client,
    step: &HttpStep,
    captures: &mut Captures,
) -> Result<(), String> {
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
    let Some(expected) = &step.records else {
        let exchange = client
            .send(&request.method, &path, &headers, body)
            .await
            .map_err(|err| err.to_string())?;
        return compare(step, &exchange, captures);
    };
    let (exchange, chunks) = client
        .send_streamed(&request.method, &path, &headers, body)
        .await
        .map_err(|err| err.to_string())?;
    compare(step, &exchange, captures)?;
    let events = exchange
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    compare_records(expected, &records(&chunks, events), captures)
}

/// Checks the records of a streamed answer, in order, each against its own
/// expectation, taking their captures.
fn compare_records(
    expected: &[RecordExpectation],
    records: &[(Duration, Value)],
    captures: &mut Captures,
) -> Result<(), String> {
    let mut problems = Vec::new();
    if records.len() != expected.len() {
        problems.push(format!(
            "records: expected {}, got {}",
            expected.len(),
            records.len()
        ));
    }
    for (index, (expect, (at, record))) in expected.iter().zip(records).enumerate() {
        matcher::collect_captures(&expect.record, Some(record), captures);
        let part = format!("records/{index}");
        problems.extend(mismatches(&expect.record, Some(record), captures, &part));
        if let Some(max) = expect.max_elapsed_ms {
            let ms = at.as_millis();
            if ms > u128::from(max) {
                problems.push(format!(
                    "{part}: arrived after {ms} ms, expected within {max} ms"
                ));
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let got: Vec<String> = records.iter().map(|(_, r)| matcher::short(r)).collect();
    Err(format!("{} | records: {}", listed(problems), got.join(" ")))
}

/// The records of a streamed body, each with the time the chunk that completed it
/// arrived: NDJSON lines as their JSON (a string when not JSON), or server-sent
/// events (`events`) as `{"event": name, "data": JSON}`.
fn records(chunks: &[(Duration, Bytes)], events: bool) -> Vec<(Duration, Value)> {
    let separator: &[u8] = if events { b"\n\n" } else { b"\n" };
    let mut pending = Vec::new();
    let mut records = Vec::new();
    for (at, chunk) in chunks {
        pending.extend_from_slice(chunk);
        while let Some(end) = pending
            .windows(separator.len())
            .position(|window| window == separator)
        {
            let record: Vec<u8> = pending.drain(..end + separator.len()).collect();
            let text = String::from_utf8_lossy(&record[..end]).into_owned();
            let value = if events {
                event(&text)
            } else {
                json_or_text(&text)
            };
            records.push((*at, value));
        }
    }
    records
}

/// A server-sent event as `{"event": name, "data": JSON}`.
fn event(text: &str) -> Value {
    let mut object = Map::new();
    let mut data = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("event:") {
            object.insert("event".to_owned(), Value::String(name.trim().to_owned()));
        } else if let Some(line) = line.strip_prefix("data:") {
            data.push(line.strip_prefix(' ').unwrap_or(line));
        }
    }
    object.insert("data".to_owned(), json_or_text(&data.join("\n")));
    Value::Object(object)
}

fn json_or_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Checks one response against its step, first taking the step's captures.
fn compare(step: &HttpStep, exchange: &Exchange, captures: &mut Captures) -> Result<(), String> {
    let elapsed_ms = exchange.elapsed.as_millis();
    let mut timing = Vec::new();
    if let Some(max) = step
        .max_elapsed_ms
        .filter(|&max| elapsed_ms > u128::from(max))
    {
        timing.push(format!("took {elapsed_ms} ms, expected at most {max} ms"));
    }
    if let Some(min) = step
        .min_elapsed_ms
        .filter(|&min| elapsed_ms < u128::from(min))
    {
        timing.push(format!("took {elapsed_ms} ms, expected at least {min} ms"));
    }
    compare_response(&step.expect, exchange, captures, timing)
}

/// Checks one response against `expect`, first taking its captures; `more` are
/// problems found already (timing), listed after those of the response itself.
pub(super) fn compare_response(
    expect: &Expectation,
    exchange: &Exchange,
    captures: &mut Captures,
    more: Vec<String>,
) -> Result<(), String> {
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
        problems.extend(mismatches(matcher, actual, captures, part));
    }
    problems.extend(more);
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} | response: {} {}",
        listed(problems),
        exchange.status.as_u16(),
        matcher::short(&body)
    ))
}

/// Where `actual` does not match `matcher`, each place prefixed with `part`.
pub(super) fn mismatches(
    matcher: &Value,
    actual: Option<&Value>,
    captures: &Captures,
    part: &str,
) -> Vec<String> {
    matcher::check(matcher, actual, captures)
        .into_iter()
        .map(|m| Mismatch {
            path: prefixed(part, &m.path),
            ..m
        })
        .map(|m| m.to_string())
        .collect()
}

/// Problems on one line, the first few of them.
pub(super) fn listed(mut problems: Vec<String>) -> String {
    let more = problems.len().saturating_sub(MAX_MISMATCHES);
    problems.truncate(MAX_MISMATCHES);
    if more > 0 {
        problems.push(format!("and {more} more"));
    }
    problems.join("; ")
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

/// Replaces `${name}` in every string of a request body or message.
pub(super) fn interpolate_json(value: &Value, captures: &Captures) -> Result<Value, String> {
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
