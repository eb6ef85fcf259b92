//! Sixteen ops on one socket, sent without waiting (pipelined), against the same
//! sixteen as one batch and as sixteen sequential HTTP/1.1 keep-alive requests.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::client::Http1;
use crate::measure::{batch, batch_of, expect_ok, median, wake};
use crate::table::Row;
use crate::ws::{Socket, contains, expect_type, subscribe, within};
use crate::{BenchError, Framework, Plan};

/// Ops per round: the default number of messages one socket may have in flight.
pub(crate) const OPS: usize = 16;

/// One kind of op, three ways.
struct Case {
    /// What the socket messages are, and what the HTTP requests are (plural).
    socket_name: &'static str,
    http_name: &'static str,
    /// The socket messages, the answer type each gets, and what a success carries.
    messages: Vec<String>,
    answer: &'static str,
    success: &'static [u8],
    /// The same ops as a native batch, and as requests.
    batch: Bytes,
    requests: Vec<(Method, String, Option<Bytes>)>,
}

fn cases() -> [Case; 2] {
    // Items 1 to 16 are read, 17 to 32 renamed: no socket of the bench subscribes to
    // those, so the patches publish events nobody receives, whichever way they came.
    let read = |i: usize| format!("/items/{}", i + 1);
    let renamed = |i: usize| format!("/items/{}", OPS + i + 1);
    let name = |i: usize| json!({ "name": format!("pipelined-{i}") });
    [
        Case {
            socket_name: "subscribes",
            http_name: "GETs",
            messages: (0..OPS).map(|i| subscribe(&read(i), &i.to_string())).collect(),
            answer: "state",
            success: b"",
            batch: batch_of(OPS, |i| json!({ "url": read(i) })),
            requests: (0..OPS).map(|i| (Method::GET, read(i), None)).collect(),
        },
        Case {
            socket_name: "patches",
            http_name: "PATCHes",
            messages: (0..OPS)
                .map(|i| {
                    json!({ "type": "patch", "uri": renamed(i), "patch": name(i), "ref": i.to_string() })
                        .to_string()
                })
                .collect(),
            answer: "result",
            success: br#""status":200"#,
            batch: batch_of(
                OPS,
                |i| json!({ "method": "PATCH", "url": renamed(i), "body": name(i) }),
            ),
            requests: (0..OPS)
                .map(|i| (Method::PATCH, renamed(i), Some(Bytes::from(name(i).to_string()))))
                .collect(),
        },
    ]
}

/// For subscribes (the socket's read) and patches: pipelined on a socket against
/// sequential requests and against one batch.
pub(crate) async fn all(
    framework: Framework,
    addr: SocketAddr,
    plan: Plan,
) -> Result<Vec<Row>, BenchError> {
    let mut h1 = Http1::connect(addr).await?;
    let mut socket = Socket::open(addr).await?;
    let mut rows = Vec::new();
    for case in cases() {
        eprintln!(
            "  {OPS} {}: pipelined on a socket, batch, sequential",
            case.socket_name
        );
        // Checked whole once, untimed: every op succeeds each way.
        batch(&mut h1, &case.batch, OPS).await?;
        let (mut pipelined, mut batched, mut sequential) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..plan.warmup + plan.iterations {
            wake(&mut h1).await?;
            let socket_time = within("pipelined ops", pipelined_round(&mut socket, &case)).await?;
            wake(&mut h1).await?;
            let started = Instant::now();
            let reply = h1
                .send(
                    Method::POST,
                    crate::measure::BATCH_PATH,
                    Some(case.batch.clone()),
                )
                .await?;
            let batch_time = started.elapsed();
            expect_ok(&reply, "a batch")?;
            wake(&mut h1).await?;
            let sequential_time = sequential_round(&mut h1, &case).await?;
            if round >= plan.warmup {
                pipelined.push(socket_time);
                batched.push(batch_time);
                sequential.push(sequential_time);
            }
        }
        let (pipelined, batched, sequential) =
            (median(pipelined), median(batched), median(sequential));
        let what = format!("{OPS} {} pipelined on 1 socket", case.socket_name);
        rows.push(Row::faster(
            framework,
            &what,
            pipelined,
            &format!("{OPS} {}, HTTP/1.1 sequential keep-alive", case.http_name),
            sequential,
        ));
        rows.push(Row::faster(
            framework,
            &what,
            pipelined,
            &format!("1 batch of {OPS} {}", case.http_name),
            batched,
        ));
    }
    h1.close().await;
    Ok(rows)
}

/// Writes the [`OPS`] messages in one go, then reads their [`OPS`] answers (in the
/// order they finish), each checked at a glance.
async fn pipelined_round(socket: &mut Socket, case: &Case) -> Result<Duration, BenchError> {
    let started = Instant::now();
    for message in &case.messages {
        socket.feed(message.clone()).await?;
    }
    socket.flush().await?;
    for _ in 0..OPS {
        let frame = socket.next().await?;
        expect_type(&frame, case.answer)?;
        if !contains(&frame, case.success) {
            return Err(BenchError::Unexpected {
                what: format!("pipelined {}", case.socket_name),
                detail: String::from_utf8_lossy(&frame).into_owned(),
            });
        }
    }
    Ok(started.elapsed())
}

async fn sequential_round(h1: &mut Http1, case: &Case) -> Result<Duration, BenchError> {
    let started = Instant::now();
    for (method, path, body) in &case.requests {
        let reply = h1.send(method.clone(), path, body.clone()).await?;
        expect_ok(&reply, case.http_name)?;
    }
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn each_case_is_the_same_ops_three_ways() {
        for case in cases() {
            let batch: Value = serde_json::from_slice(&case.batch).unwrap();
            let ops = batch["ops"].as_array().unwrap();
            assert_eq!(
                (case.messages.len(), ops.len(), case.requests.len()),
                (OPS, OPS, OPS)
            );
            for ((message, op), (method, path, _)) in
                case.messages.iter().zip(ops).zip(&case.requests)
            {
                let message: Value = serde_json::from_str(message).unwrap();
                assert_eq!(message["uri"], *path);
                assert_eq!(op["url"], *path);
                assert_eq!(op["method"].as_str().unwrap_or("GET"), method.as_str());
            }
        }
    }
}
