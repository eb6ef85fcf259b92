//! Sending a split list: batches at bounded concurrency, each retried as its answer
//! asks, results handed on as they are settled.

use std::sync::Arc;
use std::time::Duration;

use batch_core::{OpResult, Operation};
use bytes::Bytes;
use futures::channel::mpsc::{UnboundedSender, unbounded};
use futures::{FutureExt as _, Stream, StreamExt, stream};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;

use crate::client::Client;
use crate::error::{Error, Problem};
use crate::key;
use crate::response::OpResponse;
use crate::retry::{self, RetryPolicy};
use crate::split::{Chunk, Limits, Ops, split};

type Results = UnboundedSender<Result<OpResponse, Error>>;

/// Every result of `ops`, as each is settled; an error ends the stream. With
/// `streamed`, batches ask a server that advertises streaming to answer each result
/// as its op finishes.
pub(crate) fn run(
    client: Client,
    ops: Vec<Operation>,
    streamed: bool,
) -> impl Stream<Item = Result<OpResponse, Error>> + Send + 'static {
    let (results, received) = unbounded();
    // The batches are driven by polling the stream itself: nothing is spawned, and
    // dropping the stream stops them.
    let driver = async move {
        let inner = client.inner();
        let capabilities = client.capabilities().await;
        let keyed = inner.idempotency_keys && capabilities.idempotency;
        let streamed = streamed && capabilities.streaming;
        let limits = Limits {
            max_ops: capabilities.max_ops.max(1),
            max_body_bytes: capabilities.max_body_bytes,
        };
        let ops = Arc::new(Ops::new(ops, inner.format));
        let chunks = match split(&ops, inner.format, limits) {
            Ok(chunks) => chunks,
            Err(err) => {
                let _ = results.unbounded_send(Err(err));
                return;
            }
        };
        stream::iter(chunks)
            .map(|chunk| run_chunk(&client, &ops, chunk, keyed, streamed, &results))
            .buffer_unordered(inner.concurrency)
            .take_while(|&carry_on| std::future::ready(carry_on))
            .for_each(|_| std::future::ready(()))
            .await;
    };
    let driver = driver
        .into_stream()
        .filter_map(|()| std::future::ready(None));
    stream::select(received, driver)
}

/// Sends one batch until its results are settled; `false` when it failed as a
/// whole (the error is sent). With `keyed`, each batch sent carries a fresh
/// idempotency key, and its resends (the same bytes) the same key. With `streamed`,
/// each asks for its results as they come.
async fn run_chunk(
    client: &Client,
    ops: &Ops,
    chunk: Chunk,
    keyed: bool,
    streamed: bool,
    results: &Results,
) -> bool {
    let inner = client.inner();
    let policy = inner.retry;
    let Chunk {
        indices: mut pending,
        mut body,
    } = chunk;
    let new_key = || keyed.then(key::fresh).flatten();
    let mut key = new_key();
    let mut attempt = 1;
    loop {
        let mut round = Round::new(ops, &pending, attempt, policy, results);
        let may_retry = attempt < policy.attempts();
        let ids = ops.wire_ids(&pending);
        let sent = Sent {
            body: body.clone(),
            key: key.as_ref(),
            ids: &ids,
            may_retry,
            streamed,
        };
        let answered = send(client, sent, |position, result| {
            round.settle(position, result);
        })
        .await;
        match answered {
            Ok(()) => {}
            Err(Refusal::Retry(retry_after)) => {
                tokio::time::sleep(policy.delay(attempt, retry_after)).await;
                attempt += 1;
                continue;
            }
            Err(Refusal::Lost(err)) => {
                // The batch may have run. Sent again with its key it runs at most
                // once; without one, only if running it twice is harmless. A stream
                // cut after some results is not resent: those are handed on.
                let resend = may_retry
                    && !round.settled_any()
                    && (key.is_some()
                        || policy.may_resend_unkeyed(
                            pending.iter().map(|&i| ops.ops[i].method.as_deref()),
                        ));
                if !resend {
                    let _ = results.unbounded_send(Err(err.into()));
                    return false;
                }
                tokio::time::sleep(policy.delay(attempt, None)).await;
                attempt += 1;
                continue;
            }
            Err(Refusal::Fatal(mut err)) => {
                if let Error::Refused {
                    problem: Some(problem),
                    ..
                } = &mut err
                {
                    // The server points at the op's place in the batch it got.
                    problem.op = problem.op.and_then(|op| pending.get(op).copied());
                }
                let _ = results.unbounded_send(Err(err));
                return false;
            }
        }
        let Some((retry, retry_after)) = round.finish() else {
            return true;
        };
        tokio::time::sleep(policy.delay(attempt, retry_after)).await;
        // The ops sent again make another batch: another key.
        body = ops.body(&retry, inner.format);
        key = new_key();
        pending = retry;
        attempt += 1;
    }
}

/// What became of a batch that got no results.
enum Refusal {
    /// Refused with 429 or 503 (nothing ran), or 409 `idempotency_key_in_use`
    /// (its first send still runs): it may be sent again after this.
    Retry(Option<Duration>),
    /// Sent, but its answer was lost on the way: it may have run.
    Lost(reqwest::Error),
    /// Refused for good, or not answered.
    Fatal(Error),
}

/// One attempt at a batch: results settled at once, and those held until every
/// result is in (candidates for a retry, and 424s that may go along with them).
struct Round<'a> {
    ops: &'a Ops,
    pending: &'a [usize],
    attempt: u32,
    policy: RetryPolicy,
    results: &'a Results,
    held: Vec<(usize, OpResult)>,
    statuses: Vec<Option<StatusCode>>,
}

impl<'a> Round<'a> {
    fn new(
        ops: &'a Ops,
        pending: &'a [usize],
        attempt: u32,
        policy: RetryPolicy,
        results: &'a Results,
    ) -> Self {
        Self {
            ops,
            pending,
            attempt,
            policy,
            results,
            held: Vec::new(),
            statuses: vec![None; pending.len()],
        }
    }

    /// Whether any result of this attempt was read.
    fn settled_any(&self) -> bool {
        self.statuses.iter().any(Option::is_some)
    }

    fn settle(&mut self, position: usize, result: OpResult) {
        let Some(slot) = self.statuses.get_mut(position) else {
            return;
        };
        *slot = Some(result.status);
        let method = self.ops.ops[self.pending[position]].method.as_deref();
        let last = self.attempt >= self.policy.attempts();
        if !last
            && (self.policy.may_retry(method, result.status)
                || result.status == StatusCode::FAILED_DEPENDENCY)
        {
            self.held.push((position, result));
        } else {
            self.deliver(position, result);
        }
    }

    fn deliver(&self, position: usize, result: OpResult) {
        let index = self.pending[position];
        let response = OpResponse::new(index, self.ops.id(index), result, self.attempt);
        let _ = self.results.unbounded_send(Ok(response));
    }

    /// Delivers what is not retried; the ops to send again, in list order, with the
    /// longest `retry-after` among their answers.
    fn finish(self) -> Option<(Vec<usize>, Option<Duration>)> {
        let mut retried = vec![false; self.pending.len()];
        for (position, result) in &self.held {
            retried[*position] = result.status != StatusCode::FAILED_DEPENDENCY;
        }
        let position_of = |index: usize| self.pending.iter().position(|&p| p == index);
        // A 424 goes along when every dependency that failed is sent again.
        loop {
            let mut changed = false;
            for (position, result) in &self.held {
                if retried[*position] || result.status != StatusCode::FAILED_DEPENDENCY {
                    continue;
                }
                let dependencies = &self.ops.depends_on[self.pending[*position]];
                let mut any_retried = false;
                let all_fine = dependencies.iter().all(|&dependency| {
                    match position_of(dependency) {
                        // Settled in an earlier attempt: it succeeded.
                        None => true,
                        Some(at) if retried[at] => {
                            any_retried = true;
                            true
                        }
                        Some(at) => self.statuses[at].is_some_and(|s| s.as_u16() < 400),
                    }
                });
                if any_retried && all_fine {
                    retried[*position] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut retry = Vec::new();
        let mut retry_after: Option<Duration> = None;
        for (position, result) in self.held.iter().cloned() {
            if retried[position] {
                retry.push(self.pending[position]);
                if let Some(after) = retry::retry_after(&result.headers) {
                    retry_after = Some(retry_after.map_or(after, |longest| longest.max(after)));
                }
            } else {
                self.deliver(position, result);
            }
        }
        retry.sort_unstable();
        (!retry.is_empty()).then_some((retry, retry_after))
    }
}

/// One send of a batch.
struct Sent<'a> {
    body: Bytes,
    /// Its idempotency key, when it has one.
    key: Option<&'a HeaderValue>,
    /// The ids its results answer to, in its order.
    ids: &'a [String],
    /// Whether a refusal that asks to come back later is one to retry.
    may_retry: bool,
    /// Whether to ask for the results as their ops finish (NDJSON).
    streamed: bool,
}

/// POSTs one batch and hands each result to `settle` with its position in the
/// batch, as the answer is read. A refusal with 429 or 503, or a 409
/// `idempotency_key_in_use` to a keyed batch, is one to retry when `may_retry`.
async fn send(
    client: &Client,
    sent: Sent<'_>,
    mut settle: impl FnMut(usize, OpResult),
) -> Result<(), Refusal> {
    let inner = client.inner();
    let mut headers = inner.headers.clone();
    if let Some(key) = sent.key {
        headers.insert(key::HEADER, key.clone());
    }
    if sent.streamed {
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/x-ndjson"),
        );
    }
    let response = inner
        .http
        .post(inner.url.clone())
        .headers(headers)
        .header(header::CONTENT_TYPE, "application/json")
        .body(sent.body)
        .send()
        .await
        .map_err(lost)?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = retry::retry_after(response.headers());
        if retry::is_retryable(status) && sent.may_retry {
            return Err(Refusal::Retry(retry_after));
        }
        let problem = response
            .bytes()
            .await
            .ok()
            .and_then(|body| serde_json::from_slice::<Problem>(&body).ok())
            .map(Box::new);
        let in_use = status == StatusCode::CONFLICT
            && problem
                .as_ref()
                .and_then(|p| p.code.as_deref())
                .is_some_and(|code| code == "idempotency_key_in_use");
        if in_use && sent.key.is_some() && sent.may_retry {
            return Err(Refusal::Retry(retry_after));
        }
        return Err(Refusal::Fatal(Error::Refused { status, problem }));
    }
    let streamed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let essence = ct.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/x-ndjson")
                || essence.eq_ignore_ascii_case("application/jsonl")
        });
    if streamed {
        return lines(response, sent.ids.len(), settle)
            .await
            .map_err(|err| match err {
                Error::Transport(err) => lost(err),
                other => Refusal::Fatal(other),
            });
    }
    let answer = response.bytes().await.map_err(lost)?;
    let results = inner
        .format
        .results(&answer, sent.ids)
        .map_err(Refusal::Fatal)?;
    for (position, result) in results.into_iter().enumerate() {
        settle(position, result);
    }
    Ok(())
}

/// A failure to send a batch or read its answer: lost on the way, unless the
/// request could not even be built.
fn lost(err: reqwest::Error) -> Refusal {
    if err.is_builder() {
        Refusal::Fatal(err.into())
    } else {
        Refusal::Lost(err)
    }
}

/// The first members of a streamed line: which op it answers, or that it is the
/// last.
#[derive(Deserialize)]
struct Line {
    index: Option<usize>,
    #[serde(default)]
    done: bool,
}

/// Reads a streamed answer: one native result per line with its op's `index`, in
/// the order the ops finished, then `{"done": true, ...}`.
async fn lines(
    response: reqwest::Response,
    expected: usize,
    mut settle: impl FnMut(usize, OpResult),
) -> Result<(), Error> {
    let mut chunks = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut seen = vec![false; expected];
    let mut done = false;
    while !done {
        let Some(chunk) = chunks.next().await else {
            break;
        };
        buffer.extend_from_slice(&chunk?);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let head: Line = serde_json::from_slice(line)
                .map_err(|err| Error::Answer(format!("a streamed line: {err}")))?;
            if head.done {
                done = true;
                break;
            }
            let index = head
                .index
                .filter(|&index| index < expected && !seen[index])
                .ok_or_else(|| {
                    Error::Answer(format!("a streamed result for op {:?}", head.index))
                })?;
            let result: OpResult = serde_json::from_slice(line)
                .map_err(|err| Error::Answer(format!("a streamed result: {err}")))?;
            seen[index] = true;
            settle(index, result);
        }
    }
    let got = seen.iter().filter(|&&s| s).count();
    if got < expected {
        return Err(Error::Answer(format!(
            "the stream ended after {got} of {expected} results"
        )));
    }
    Ok(())
}
