//! Execution: runs a planned batch on the caller's task, concurrently where the
//! graph allows, and answers every op exactly once.
//!
//! Nothing is spawned: every op future lives in one `FuturesUnordered` owned by the
//! batch future, so dropping the batch (the client went away) drops every op still
//! running and starts no new one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::task::Poll;

use bytes::Bytes;
use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use serde::Serialize;
use tokio::time::{Instant, timeout_at};

use crate::config::Config;
use crate::executor::{ExecuteError, Executor};
use crate::hooks::{OpView, Refusal};
use crate::model::{BatchResponse, OnError, OpResult, ResultBody};
use crate::plan::{Graph, Plan, PlannedOp};

/// Runs every op of `plan` and returns their results in request order.
pub(crate) async fn run<E: Executor>(executor: &E, plan: Plan, config: &Config) -> BatchResponse {
    let deadline = Instant::now() + config.batch_deadline();
    let limit = if plan.sequential {
        1
    } else {
        config.max_concurrency()
    };
    let include_headers = plan.include_headers;
    let layout = plan.layout;
    let mut state = State::new(plan.ops, plan.graph, plan.on_error);
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < limit {
            let Some(Reverse(index)) = state.ready.pop() else {
                break;
            };
            // Each op becomes ready once, when its last dependency finishes.
            let op = &mut state.ops[index];
            let request = std::mem::replace(&mut op.request, Request::new(Bytes::new()));
            let now = Instant::now();
            if state.halted {
                state.finish(
                    index,
                    not_run(StatusCode::FAILED_DEPENDENCY, "batch_halted", None),
                );
            } else if now >= deadline {
                state.finish(index, timed_out());
            } else if let Err(refusal) = check_op(config, index, &op.id, &request) {
                state.finish(index, refused(refusal));
            } else {
                let op_timeout = op
                    .timeout
                    .map_or(config.op_timeout(), |t| t.min(config.op_timeout()));
                let op_deadline = deadline.min(now + op_timeout);
                let mut call = Box::pin(run_op(
                    executor,
                    index,
                    request,
                    op_deadline,
                    config.max_response_body(),
                ));
                // Most ops answer on their first poll: run that poll here and queue
                // only the ops that wait, each then polled again with its own waker.
                match poll_once(call.as_mut()).await {
                    Poll::Ready((index, outcome)) => state.finish(index, outcome),
                    Poll::Pending => running.push(call),
                }
            }
        }
        let Some((index, outcome)) = running.next().await else {
            break;
        };
        state.finish(index, outcome);
    }
    BatchResponse {
        results: state.into_results(),
        include_headers,
        layout,
    }
}

type Outcome = (StatusCode, HeaderMap, ResultBody);

/// What the engine knows between polls: which ops finished, which wait, which are ready.
struct State {
    /// The ops; each one's request is taken (left empty) when it starts.
    ops: Vec<PlannedOp>,
    graph: Graph,
    results: Vec<Option<Outcome>>,
    waiting_for: Vec<usize>,
    /// Ready ops start lowest index first, so a sequential batch runs in request order.
    ready: BinaryHeap<Reverse<usize>>,
    on_error: OnError,
    halted: bool,
}

impl State {
    fn new(ops: Vec<PlannedOp>, graph: Graph, on_error: OnError) -> Self {
        let waiting_for: Vec<usize> = graph.deps.iter().map(Vec::len).collect();
        let ready = (0..ops.len())
            .filter(|&i| waiting_for[i] == 0)
            .map(Reverse)
            .collect();
        Self {
            results: (0..ops.len()).map(|_| None).collect(),
            ops,
            graph,
            waiting_for,
            ready,
            on_error,
            halted: false,
        }
    }

    /// Records the outcome of op `index`, then releases its dependents whose every
    /// dependency succeeded and answers 424 for the others, transitively.
    fn finish(&mut self, index: usize, outcome: Outcome) {
        // Only 424s cascade; most ops finish alone, without allocating a worklist.
        let mut cascade = Vec::new();
        let mut next = Some((index, outcome));
        while let Some((index, outcome)) = next.take().or_else(|| cascade.pop()) {
            if outcome.0.as_u16() >= 400 && self.on_error == OnError::Stop {
                self.halted = true;
            }
            self.results[index] = Some(outcome);
            for &dependent in &self.graph.dependents[index] {
                self.waiting_for[dependent] -= 1;
                if self.waiting_for[dependent] > 0 {
                    continue;
                }
                let failed = self.graph.deps[dependent].iter().find(|&&dep| {
                    self.results[dep]
                        .as_ref()
                        .is_some_and(|(status, ..)| status.as_u16() >= 400)
                });
                match failed {
                    None => self.ready.push(Reverse(dependent)),
                    Some(&dep) => cascade.push((
                        dependent,
                        not_run(
                            StatusCode::FAILED_DEPENDENCY,
                            "dependency_failed",
                            Some(&self.ops[dep].id),
                        ),
                    )),
                }
            }
        }
    }

    fn into_results(self) -> Vec<OpResult> {
        self.results
            .into_iter()
            .zip(self.ops)
            .map(|(outcome, op)| {
                // Every op of an acyclic plan finishes; answer rather than panic if not.
                let (status, headers, body) = outcome.unwrap_or_else(internal_error);
                OpResult {
                    id: op.id,
                    status,
                    headers,
                    body,
                    silent: op.silent,
                }
            })
            .collect()
    }
}

/// Runs one op until `deadline`, turning a panic, an error or a timeout into that
/// op's result.
async fn run_op<E: Executor>(
    executor: &E,
    index: usize,
    request: Request<Bytes>,
    deadline: Instant,
    max_response_body: usize,
) -> (usize, Outcome) {
    let is_head = request.method() == Method::HEAD;
    let mut call = pin!(AssertUnwindSafe(executor.execute(request)).catch_unwind());
    // The timer is set only for an op that does not answer on its first poll.
    let answer = match poll_once(call.as_mut()).await {
        Poll::Ready(answer) => Ok(answer),
        Poll::Pending => Box::pin(timeout_at(deadline, call)).await,
    };
    let outcome = match answer {
        Err(_elapsed) => timed_out(),
        Ok(Err(_panic)) => {
            tracing::error!(op = index, "operation handler panicked");
            internal_error()
        }
        Ok(Ok(Err(ExecuteError::ResponseTooLarge { .. }))) => too_large(),
        Ok(Ok(Err(ExecuteError::Failed(err)))) => {
            tracing::warn!(op = index, error = %err, "operation failed");
            internal_error()
        }
        Ok(Ok(Ok(response))) if response.body().len() > max_response_body => too_large(),
        Ok(Ok(Ok(response))) => completed(response, is_head),
    };
    (index, outcome)
}

/// Polls `future` once and says what that poll gave, without waiting.
fn poll_once<F: Future + ?Sized>(mut future: Pin<&mut F>) -> impl Future<Output = Poll<F::Output>> {
    std::future::poll_fn(move |cx| Poll::Ready(future.as_mut().poll(cx)))
}

/// Runs the op hooks on an op about to start.
fn check_op(
    config: &Config,
    index: usize,
    id: &str,
    request: &Request<Bytes>,
) -> Result<(), Refusal> {
    let view = OpView { index, id, request };
    config.hooks().op.iter().try_for_each(|hook| hook(&view))
}

fn refused(refusal: Refusal) -> Outcome {
    let (status, mut headers, body) = not_run(refusal.status, &refusal.error, None);
    for (name, value) in refusal.headers {
        headers.append(name, value);
    }
    (status, headers, body)
}

fn completed(response: Response<Bytes>, is_head: bool) -> Outcome {
    let (parts, body) = response.into_parts();
    let body = if is_head {
        ResultBody::Empty
    } else {
        ResultBody::classify(&parts.headers, body)
    };
    (parts.status, parts.headers, body)
}

/// The body of an op the engine answered itself, fields in the spec's order.
#[derive(Serialize)]
struct NotRun<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dependency: Option<&'a str>,
}

fn not_run(status: StatusCode, error: &str, dependency: Option<&str>) -> Outcome {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = ResultBody::json(&NotRun { error, dependency });
    (status, headers, body)
}

fn timed_out() -> Outcome {
    not_run(StatusCode::GATEWAY_TIMEOUT, "timeout", None)
}

fn internal_error() -> Outcome {
    not_run(StatusCode::INTERNAL_SERVER_ERROR, "internal", None)
}

fn too_large() -> Outcome {
    not_run(StatusCode::BAD_GATEWAY, "response_too_large", None)
}
