//! Execution: runs a planned batch on the caller's task, concurrently where the
//! graph allows, and answers every op exactly once.
//!
//! Nothing is spawned: every op future lives in one `FuturesUnordered` owned by the
//! batch future, so dropping the batch (the client went away) drops every op still
//! running and starts no new one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use serde::Serialize;
use tokio::time::{Instant, timeout_at};

use crate::config::Config;
use crate::executor::{ExecuteError, Executor};
use crate::hooks::{OpView, Refusal};
use crate::model::{BatchResponse, OnError, OpResult, ResultBody};
use crate::plan::{Graph, Plan};

/// Runs every op of `plan` and returns their results in request order.
pub(crate) async fn run<E: Executor>(
    executor: &E,
    mut plan: Plan,
    config: &Config,
) -> BatchResponse {
    let deadline = Instant::now() + config.batch_deadline();
    let limit = if plan.sequential {
        1
    } else {
        config.max_concurrency()
    };
    let include_headers = plan.include_headers;
    let layout = std::mem::take(&mut plan.layout);
    let (mut state, mut requests) = State::new(plan);
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < limit {
            let Some(Reverse(index)) = state.ready.pop() else {
                break;
            };
            let Some((request, timeout)) = requests[index].take() else {
                continue;
            };
            if state.halted {
                state.finish(
                    index,
                    not_run(StatusCode::FAILED_DEPENDENCY, "batch_halted", None),
                );
            } else if Instant::now() >= deadline {
                state.finish(index, timed_out());
            } else if let Err(refusal) = check_op(config, index, &state.ids[index], &request) {
                state.finish(index, refused(refusal));
            } else {
                let op_timeout =
                    timeout.map_or(config.op_timeout(), |t| t.min(config.op_timeout()));
                let op_deadline = deadline.min(Instant::now() + op_timeout);
                running.push(run_op(
                    executor,
                    index,
                    request,
                    op_deadline,
                    config.max_response_body(),
                ));
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
    graph: Graph,
    ids: Vec<String>,
    silent: Vec<bool>,
    results: Vec<Option<(StatusCode, HeaderMap, ResultBody)>>,
    waiting_for: Vec<usize>,
    /// Ready ops start lowest index first, so a sequential batch runs in request order.
    ready: BinaryHeap<Reverse<usize>>,
    on_error: OnError,
    halted: bool,
}

type Pending = Option<(Request<Bytes>, Option<Duration>)>;

impl State {
    fn new(plan: Plan) -> (Self, Vec<Pending>) {
        let n = plan.ops.len();
        let waiting_for: Vec<usize> = plan.graph.deps.iter().map(Vec::len).collect();
        let ready = (0..n)
            .filter(|&i| waiting_for[i] == 0)
            .map(Reverse)
            .collect();
        let mut ids = Vec::with_capacity(n);
        let mut silent = Vec::with_capacity(n);
        let mut requests = Vec::with_capacity(n);
        for op in plan.ops {
            ids.push(op.id);
            silent.push(op.silent);
            requests.push(Some((op.request, op.timeout)));
        }
        let state = Self {
            graph: plan.graph,
            ids,
            silent,
            results: (0..n).map(|_| None).collect(),
            waiting_for,
            ready,
            on_error: plan.on_error,
            halted: false,
        };
        (state, requests)
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
                            Some(&self.ids[dep]),
                        ),
                    )),
                }
            }
        }
    }

    fn into_results(self) -> Vec<OpResult> {
        self.results
            .into_iter()
            .zip(self.ids.into_iter().zip(self.silent))
            .map(|(outcome, (id, silent))| {
                // Every op of an acyclic plan finishes; answer rather than panic if not.
                let (status, headers, body) = outcome.unwrap_or_else(internal_error);
                OpResult {
                    id,
                    status,
                    headers,
                    body,
                    silent,
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
    let call = AssertUnwindSafe(executor.execute(request)).catch_unwind();
    let outcome = match timeout_at(deadline, call).await {
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
