//! Socket steps: opening a socket, sending to it, and what must (or must not)
//! arrive on it.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::time::Instant;

use super::ScenarioRun;
use super::http_step::{compare_response, interpolate_json, listed, mismatches};
use crate::matcher::{self, Captures};
use crate::scenario::{BodyPart, Outgoing, SOCKET_PATH, SocketAction, SocketStep};
use crate::socket::{self, Received, Socket};

/// Runs one socket step of `run`'s scenario.
pub(super) async fn run(run: &mut ScenarioRun<'_>, step: &SocketStep) -> Result<(), String> {
    let name = step.socket.as_str();
    let captures = &mut run.captures;
    match &step.action {
        SocketAction::Open { headers, expect } => {
            let mut sent = Vec::with_capacity(headers.len());
            for (header, value) in headers {
                sent.push((header.clone(), captures.interpolate(value)?));
            }
            let (exchange, socket) = socket::open(run.client, SOCKET_PATH, &sent)
                .await
                .map_err(|err| err.to_string())?;
            compare_response(expect, &exchange, captures, Vec::new())?;
            if let Some(socket) = socket {
                run.sockets.insert(name.to_owned(), socket);
            }
            Ok(())
        }
        SocketAction::Send(message) => send(open(&mut run.sockets, name)?, message, captures).await,
        SocketAction::Receive { matcher, timeout } => {
            receive(open(&mut run.sockets, name)?, matcher, *timeout, captures).await
        }
        SocketAction::ReceiveUnordered { matchers, timeout } => {
            let socket = open(&mut run.sockets, name)?;
            receive_unordered(socket, matchers, *timeout, captures).await
        }
        SocketAction::Silent(wait) => match open(&mut run.sockets, name)?.next(*wait).await {
            Ok(Received::Nothing) => Ok(()),
            Ok(received) => Err(format!(
                "expected nothing for {} ms, got {}",
                wait.as_millis(),
                describe(&received)
            )),
            Err(err) => Err(err.to_string()),
        },
        SocketAction::Closed { code, timeout } => {
            let received = open(&mut run.sockets, name)?.next(*timeout).await;
            run.sockets.remove(name);
            let received = received.map_err(|err| err.to_string())?;
            match (&received, code) {
                (Received::Closed(frame), Some(code))
                    if frame.as_ref().map(|f| f.0) != Some(*code) =>
                {
                    Err(format!(
                        "expected close code {code}, got {}",
                        describe(&received)
                    ))
                }
                (Received::Closed(_), _) => Ok(()),
                _ => Err(format!(
                    "expected the server to close the socket, got {}",
                    describe(&received)
                )),
            }
        }
    }
}

/// The open socket called `name`.
fn open<'s>(
    sockets: &'s mut HashMap<String, Socket>,
    name: &str,
) -> Result<&'s mut Socket, String> {
    // Loading checks that a step opens each socket, expecting 101, before any other
    // step uses it, and a failed open ends its scenario: this only keeps to that.
    sockets
        .get_mut(name)
        .ok_or_else(|| format!("socket {name:?} is not open"))
}

async fn receive(
    socket: &mut Socket,
    matcher: &Value,
    timeout: Duration,
    captures: &mut Captures,
) -> Result<(), String> {
    let message = next_message(socket, timeout)
        .await?
        .ok_or_else(|| nothing_within(timeout))?;
    matcher::collect_captures(matcher, Some(&message), captures);
    let problems = mismatches(matcher, Some(&message), captures, "message");
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} | message: {}",
        listed(problems),
        matcher::short(&message)
    ))
}

async fn receive_unordered(
    socket: &mut Socket,
    matchers: &[Value],
    timeout: Duration,
    captures: &mut Captures,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut messages = Vec::with_capacity(matchers.len());
    while messages.len() < matchers.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = next_message(socket, left)
            .await
            .and_then(|message| message.ok_or_else(|| nothing_within(timeout)))
            .map_err(|why| {
                format!(
                    "{why} (after {} of {} messages: {})",
                    messages.len(),
                    matchers.len(),
                    matcher::short(&Value::Array(messages.clone()))
                )
            })?;
        messages.push(message);
    }
    let mut used = vec![false; messages.len()];
    match assign(matchers, &messages, &mut used, captures) {
        Some(taken) => {
            *captures = taken;
            Ok(())
        }
        None => Err(unassigned(matchers, &messages, captures)),
    }
}

async fn send(socket: &mut Socket, message: &Outgoing, captures: &Captures) -> Result<(), String> {
    let sent = match message {
        Outgoing::Json(json) => {
            let json = interpolate_json(json, captures)?;
            socket.send_text(json.to_string()).await
        }
        Outgoing::Text(text) => socket.send_text(captures.interpolate(text)?).await,
        Outgoing::Parts(parts) => {
            // Loading allows only one-byte pads: the pieces stay UTF-8.
            let text = String::from_utf8(BodyPart::assemble(parts)).map_err(|e| e.to_string())?;
            socket.send_text(text).await
        }
        Outgoing::Binary(text) => {
            let bytes = Bytes::from(captures.interpolate(text)?);
            socket.send_binary(bytes).await
        }
    };
    sent.map_err(|err| err.to_string())
}

/// The next message, as the matchers see it: the text parsed as JSON, else the
/// text as a string; `None` when none came within `wait`.
async fn next_message(socket: &mut Socket, wait: Duration) -> Result<Option<Value>, String> {
    match socket.next(wait).await.map_err(|err| err.to_string())? {
        Received::Text(text) => Ok(Some(
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )),
        Received::Nothing => Ok(None),
        other => Err(format!("expected a text message, got {}", describe(&other))),
    }
}

fn nothing_within(timeout: Duration) -> String {
    format!("no message within {} ms", timeout.as_millis())
}

fn describe(received: &Received) -> String {
    match received {
        Received::Text(text) => format!("the message {}", shortened(text)),
        Received::Binary(bytes) => format!("a binary message of {} bytes", bytes.len()),
        Received::Closed(Some((code, reason))) => {
            format!("a close with code {code} and reason {reason:?}")
        }
        Received::Closed(None) => "a close without a code".to_owned(),
        Received::Ended => "the end of the connection, without a close frame".to_owned(),
        Received::Nothing => "nothing".to_owned(),
    }
}

fn shortened(text: &str) -> String {
    matcher::short(&serde_json::from_str(text).unwrap_or(Value::String(text.to_owned())))
}

/// Gives each matcher a message of its own that it matches, the captures of each
/// visible to the matchers after it; the captures taken, if there is a way.
fn assign(
    matchers: &[Value],
    messages: &[Value],
    used: &mut [bool],
    captures: &Captures,
) -> Option<Captures> {
    let Some((first, rest)) = matchers.split_first() else {
        return Some(captures.clone());
    };
    for (index, message) in messages.iter().enumerate() {
        if used[index] {
            continue;
        }
        let mut trial = captures.clone();
        matcher::collect_captures(first, Some(message), &mut trial);
        if !matcher::check(first, Some(message), &trial).is_empty() {
            continue;
        }
        used[index] = true;
        if let Some(taken) = assign(rest, messages, used, &trial) {
            return Some(taken);
        }
        used[index] = false;
    }
    None
}

/// Why no assignment exists: the matchers no message matches, or, when each
/// matches some, that they cannot each have one of their own.
fn unassigned(matchers: &[Value], messages: &[Value], captures: &Captures) -> String {
    let lonely: Vec<String> = matchers
        .iter()
        .enumerate()
        .filter(|(_, matcher)| {
            !messages.iter().any(|message| {
                let mut trial = captures.clone();
                matcher::collect_captures(matcher, Some(message), &mut trial);
                matcher::check(matcher, Some(message), &trial).is_empty()
            })
        })
        .map(|(index, matcher)| format!("matcher {} {}", index + 1, matcher::short(matcher)))
        .collect();
    let why = if lonely.is_empty() {
        "the messages cannot be paired one to one with the matchers".to_owned()
    } else {
        format!("no message matches {}", listed(lonely))
    };
    format!(
        "{why} | messages: {}",
        matcher::short(&Value::Array(messages.to_vec()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assigned(matchers: Value, messages: Value) -> Option<Captures> {
        let (Value::Array(matchers), Value::Array(messages)) = (matchers, messages) else {
            panic!("arrays, please");
        };
        let mut used = vec![false; messages.len()];
        assign(&matchers, &messages, &mut used, &Captures::default())
    }

    #[test]
    fn unordered_messages_pair_one_to_one_whatever_their_order() {
        let matchers = json!([{"type": "result"}, {"type": "patch"}]);
        assert!(
            assigned(
                matchers.clone(),
                json!([{"type": "patch"}, {"type": "result"}])
            )
            .is_some()
        );
        assert!(assigned(matchers, json!([{"type": "patch"}, {"type": "patch"}])).is_none());
        // The first matcher fits both; only one pairing leaves a message for the second.
        let greedy = json!([{"type": {"$type": "string"}}, {"type": "b"}]);
        assert!(assigned(greedy, json!([{"type": "b"}, {"type": "a"}])).is_some());
    }

    #[test]
    fn captures_of_the_pairing_found_are_kept_and_seen_by_later_matchers() {
        let matchers = json!([{"id": {"$capture": "id"}}, {"of": {"$eq": "${id}"}}]);
        let captures = assigned(matchers, json!([{"of": 7}, {"id": 7}])).expect("a pairing exists");
        assert_eq!(captures.interpolate("${id}").unwrap(), "7");
        let explained = unassigned(
            &[json!({"type": "result"}), json!({"type": "delete"})],
            &[json!({"type": "result"}), json!({"type": "patch"})],
            &Captures::default(),
        );
        assert!(
            explained.starts_with("no message matches matcher 2"),
            "{explained}"
        );
    }
}
