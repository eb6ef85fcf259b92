//! Execution: runs a planned batch on the caller's task, concurrently where the
//! graph allows, and answers every op exactly once: each result goes to a [`Sink`]
//! the moment its op finishes, which collects them ([`Collect`], the buffered
//! answer), writes them in request order ([`Writing`], the buffered native answer)
//! or writes them out (a streamed answer).
//!
//! Nothing is spawned: an op's first poll runs on the batch's own task, and an op
//! that has to wait lives on in one `FuturesUnordered` owned by the batch future, so
//! dropping the batch (the client went away) drops every op still running and
//! starts no new one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use futures::future::Either;
use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use serde::Serialize;
use tokio::time::error::Elapsed;
use tokio::time::{Instant, timeout_at};
use tracing::{Instrument, Span};

use crate::changes::{Hub, Mutation};
use crate::codec::native;
use crate::config::Config;
use crate::deadline::after;
use crate::executor::{ExecuteError, Executor};
use crate::hooks::{OpHook, OpView, Refusal};
use crate::model::{BatchResponse, Layout, OnError, OpResult, ResultBody, ResultParts, Text};
use crate::observe::{OpMeter, Since, Tally, Waiting, op_span};
use crate::plan::Plan;

/// Where the engine puts each op's result as the op finishes, in the order they
/// finish.
pub(crate) trait Sink {
    /// Takes op `index`'s result. [`ControlFlow::Break`] ends the batch there: the
    /// ops still running are dropped (cancelled) and no other op starts.
    fn put(&mut self, index: usize, result: OpResult) -> impl Future<Output = ControlFlow<()>>;

    /// Takes op `index`'s result as its parts, where they lie, if it can at once
    /// and without owning them. `None` if not, with nothing done: the result is
    /// then made and handed to [`Sink::put`].
    fn written(&mut self, _index: usize, _result: ResultParts<'_>) -> Option<ControlFlow<()>> {
        None
    }

    /// Takes the header map of the last result written from its parts: a sink
    /// that answers with a header map of its own may make it of this one, which
    /// has room already (where a map made anew allocates two blocks).
    fn recycle(&mut self, _headers: HeaderMap) {}
}

/// Runs every op of `plan`, handing each result to `sink` as its op finishes; each
/// successful mutation is published through `hub`, when there is one. Gives back the
/// ids of the ops whose results `sink` never took, for it to name them by (the
/// others are in their results).
// Always inlined into its callers, which then poll the run they chose with less of
// a detour (~16 instructions a batch).
#[inline(always)]
pub(crate) fn run<'a, E: Executor>(
    executor: &'a E,
    plan: Box<Plan>,
    config: &'a Config,
    hub: Option<&'a dyn Hub>,
    sink: &'a mut impl Sink,
) -> impl Future<Output = Vec<Text>> + 'a {
    let hooks = &config.hooks().op[..];
    let limit = config.max_response_body();
    // Without hooks an op is the executor's call alone; with them, a future that runs
    // them first (and owns a copy of the id they see). Each is a run of its own, made
    // for its kind of op: the run without hooks polls and drops the executor's future
    // itself, not through an `Either` of the two (~30 instructions an op; the `Either`
    // of the runs costs ~50 a batch).
    if hooks.is_empty() {
        Either::Left(run_calling(
            plan,
            config,
            hub,
            sink,
            move |_, _, request| Some(executor.execute(request.take()?, limit)),
        ))
    } else {
        Either::Right(run_calling(
            plan,
            config,
            hub,
            sink,
            move |index, id: &Text, request| {
                let request = request.take()?;
                Some(Box::pin(checked(
                    executor,
                    hooks,
                    index,
                    id.clone(),
                    request,
                    limit,
                )))
            },
        ))
    }
}

/// [`run`], each op started by `call`: given the op's index, its id and its request
/// where it lies, it takes the request and gives back the future that answers it
/// (`None` if the request was taken already).
async fn run_calling<F>(
    plan: Box<Plan>,
    config: &Config,
    hub: Option<&dyn Hub>,
    sink: &mut impl Sink,
    call: impl Fn(usize, &Text, &mut Option<Request<Bytes>>) -> Option<F>,
) -> Vec<Text>
where
    F: Future<Output = Result<Response<Bytes>, ExecuteError>>,
{
    let start = Instant::now();
    let deadline = after(start, config.batch_deadline());
    let concurrency = if plan.sequential {
        1
    } else {
        config.max_concurrency()
    };
    let mut state = State::new(plan);
    let meter = OpMeter::new();
    // Created by the first op that has to wait: most batches have none.
    let mut running = None;
    // The box of the last op that answered at once (its future gone), for the next.
    let mut spare = None;
    // The first round starts when the batch does: its clock reading is the batch's.
    let mut first = Some(start);
    'batch: loop {
        // One clock reading per round: the ops a round starts share it, and the
        // deadline of those without a timeout of their own.
        let now = first.take().unwrap_or_else(Instant::now);
        let round_deadline = deadline.min(after(now, config.op_timeout()));
        'ops: while running.as_ref().map_or(0, FuturesUnordered::len) < concurrency {
            let Some(index) = state.next_ready() else {
                break;
            };
            // Started in a block without an await: the request, borrowed here, would
            // otherwise have a place in the batch's future, and be copied into it and
            // out again on its way to the executor's. The op's `Started` is the
            // block's value, made where the batch's future holds it rather than
            // handed out in a `Result` and moved there (96 bytes). Started, polled
            // and answered in blocks whose values are all that outlives them: what
            // the op is read with and its result (176 bytes) are then not each kept
            // apart in the batch's future for the awaits after theirs, but share its
            // room (the future of a batch of the bench's ops 1,336 → 880 bytes).
            let flow = {
                let mut operation;
                let result = 'op: {
                    let started = {
                        // An op is ready once, when its last dependency finishes: its request
                        // is completed where it lies, moved out (nothing left in its place)
                        // only into the executor's call, and never looked for again, so it
                        // is always there. (Were it not, an engine bug, the op would be
                        // skipped rather than the server panic.)
                        let op = &mut state.plan.ops[index];
                        let Some(request) = &mut op.request else {
                            continue 'ops;
                        };
                        let links = state.plan.links.get_mut(index).and_then(Option::take);
                        // An op that cannot start is answered here: the batch halted, its
                        // time is up, or what it takes from results cannot be filled in
                        // (which is done now, its dependencies finished).
                        // Its result goes to the sink as an answered op's does, after the
                        // block: awaited here, it would have a place of its own in the
                        // batch's future (176 bytes), apart from theirs.
                        let refused = if state.halted {
                            Some(not_run(StatusCode::FAILED_DEPENDENCY, "batch_halted", None))
                        } else if now >= deadline {
                            Some(timed_out())
                        } else {
                            links
                                .and_then(|links| {
                                    links.apply(request, &state.kept, config.path()).err()
                                })
                                .map(|failure| {
                                    let (status, headers, body) = failure.outcome();
                                    outcome(status, headers, body)
                                })
                        };
                        if let Some(result) = refused {
                            op.request = None;
                            break 'op Err(state.finished(index, result));
                        }
                        if !state.plan.complete {
                            // The last op to start takes what they all share.
                            state
                                .plan
                                .shared
                                .complete(index, request, state.unstarted == 0);
                        }
                        // What a change event needs of the request, kept only when it may be
                        // one.
                        let mutation = hub.and_then(|_| Mutation::of(request)).map(Box::new);
                        let span = op_span(index, &state.plan.ids[index], request);
                        let is_head = request.method() == Method::HEAD;
                        // The request is moved only now, from the op into the call, which
                        // takes it itself: taken earlier and handed over, it is copied once
                        // more on the way.
                        operation = boxed(
                            &mut spare,
                            match call(index, &state.plan.ids[index], &mut op.request) {
                                Some(future) => future,
                                None => continue 'ops,
                            },
                        );
                        Started {
                            index,
                            is_head,
                            began: now,
                            mutation,
                            span,
                        }
                    };
                    // Most ops answer on their first poll: it runs here, and only the ops that
                    // wait are queued (and timed), then polled with their own waker.
                    // The answer is read in the match of the poll, whose arms do not await:
                    // held by a match whose arm awaits, it would be stored in the batch's
                    // future and copied there and back. Its result, when one is made, is
                    // made on the stack likewise and handed to the sink after.
                    // A future that answered (or panicked) is left in its box, dropped
                    // when the next op's is put there or with the batch: an answered
                    // async fn's future owns nothing, and dropping it at once (as `Fuse`
                    // did) cost about 35 instructions an op.
                    match poll_once(operation.as_mut(), &started.span).await {
                        Poll::Pending => {
                            // An op's own timeout may only bring its deadline nearer.
                            // Worked out only for an op that waits: the others need none.
                            let deadline = state
                                .plan
                                .terms
                                .get(index)
                                .and_then(|terms| terms.timeout)
                                .map_or(round_deadline, |t| round_deadline.min(after(now, t)));
                            let waiting = meter.waits();
                            running
                                .get_or_insert_with(FuturesUnordered::new)
                                .push(started.wait(operation, deadline, waiting, &meter));
                            continue 'ops;
                        }
                        // A response whose result no op refers to (nearly every one) goes to
                        // the sink as its parts, where they lie: a sink that writes it at
                        // once does so without the moves of those parts into an `OpResult`
                        // and on into the sink (~80 instructions an op).
                        Poll::Ready(Ok(Ok(response))) if !state.keeps(index) => {
                            spare = Some(operation);
                            let (parts, body) = response.into_parts();
                            let body = body_of(&parts.headers, body, started.is_head);
                            started.answered(parts.status, &meter);
                            publish(started.mutation, hub, parts.status, &parts.headers, &body);
                            state.settle_all(index, parts.status);
                            let result = ResultParts {
                                id: &state.plan.ids[index],
                                status: parts.status,
                                headers: &parts.headers,
                                body: &body,
                                silent: state.plan.terms.silent(index),
                            };
                            match sink.written(index, result) {
                                Some(flow) => {
                                    // The batch's last result: its map is not dropped, but
                                    // handed on, for the answer's headers.
                                    if state.unstarted == 0
                                        && running.as_ref().is_none_or(FuturesUnordered::is_empty)
                                    {
                                        sink.recycle(parts.headers);
                                    }
                                    Ok(flow)
                                }
                                None => {
                                    let mut result = outcome(parts.status, parts.headers, body);
                                    state.result(index, &mut result);
                                    Err(result)
                                }
                            }
                        }
                        Poll::Ready(answer) => {
                            spare = Some(operation);
                            let mut result = started.answer(answer);
                            started.answered(result.status, &meter);
                            publish(
                                started.mutation,
                                hub,
                                result.status,
                                &result.headers,
                                &result.body,
                            );
                            state.finish(index, &mut result);
                            Err(result)
                        }
                    }
                };
                match result {
                    Ok(flow) => flow,
                    Err(result) => sink.put(index, result).await,
                }
            };
            if flushes(flow, &state.done)
                && flush(flow, &mut state.done, &mut state.plan.ids, sink)
                    .await
                    .is_break()
            {
                break 'batch;
            }
            // Ops answered here never return to the runtime: a large batch of them
            // yields now and then, as any tokio task must. A unit of the task's
            // budget is spent as `consume_budget` spends it, without its future's
            // state, which only answers a poll after it is done (this one never
            // gets one): about 26 instructions an op.
            std::future::poll_fn(|cx| {
                tokio::task::coop::poll_proceed(cx).map(|spent| spent.made_progress())
            })
            .await;
        }
        let Some(running) = &mut running else {
            break;
        };
        // In a block, as the ops started above are: the result outlives only its
        // own await.
        let flow = {
            let Some((index, mut result, mutation)) = running.next().await else {
                break;
            };
            publish(mutation, hub, result.status, &result.headers, &result.body);
            state.finish(index, &mut result);
            sink.put(index, result).await
        };
        if flushes(flow, &state.done)
            && flush(flow, &mut state.done, &mut state.plan.ids, sink)
                .await
                .is_break()
        {
            break;
        }
    }
    std::mem::take(&mut state.plan.ids)
}

/// Whether [`flush`] has anything to do once `sink` took the result of an op that
/// just finished, as `flow` says: the sink ended the batch, or finishing that op
/// settled others. Asked before the flush's future is made, which most ops (alone,
/// and with a sink that goes on) never need.
#[inline]
fn flushes(flow: ControlFlow<()>, done: &[(usize, OpResult)]) -> bool {
    flow.is_break() || !done.is_empty()
}

/// Once `sink` took the result of an op that just finished, as `flow` says, hands
/// it the results finishing that op settled (`done`). If the sink ends the batch,
/// the ids of the results it was not handed go back to `ids`, for it to name those
/// ops by.
///
/// The op's own result is handed over by the caller, not here: it is not moved into
/// this future, and only the few a finished op settles with it wait in `done`.
async fn flush(
    flow: ControlFlow<()>,
    done: &mut Vec<(usize, OpResult)>,
    ids: &mut [Text],
    sink: &mut impl Sink,
) -> ControlFlow<()> {
    let (mut flow, mut results) = (flow, done.drain(..));
    while flow.is_continue() {
        let Some((index, result)) = results.next() else {
            break;
        };
        flow = sink.put(index, result).await;
    }
    // Left only if the sink ended the batch.
    for (index, result) in results {
        ids[index] = result.id;
    }
    flow
}

/// The buffered answer: every result, in request order, until they hold more than
/// the whole-batch cap ([`Config::max_batch_response`]).
pub(crate) struct Collect {
    /// Each op's result, where the answer holds it, so that nothing is moved at the
    /// end. Until it comes, a stand-in without an id, which allocates nothing: the
    /// ids of the ops whose result never came are the batch's own, handed to
    /// [`Collect::into_response`].
    results: Vec<OpResult>,
    /// Whether each op's result came.
    came: Vec<bool>,
    cap: Cap,
}

impl Collect {
    /// A collector for the ops of `plan`, holding at most `cap` bytes of results.
    pub(crate) fn new(plan: &Plan, cap: usize) -> Self {
        // Filled rather than zeroed by the allocator: glibc's `calloc`, which
        // `vec![false; n]` calls, passes its per-thread cache by (~130 instructions).
        let mut came = Vec::with_capacity(plan.ops.len());
        came.resize(plan.ops.len(), false);
        Self {
            results: (0..plan.ops.len())
                .map(|index| OpResult {
                    silent: plan.terms.silent(index),
                    ..OpResult::new(Text::default(), StatusCode::INTERNAL_SERVER_ERROR)
                })
                .collect(),
            came,
            cap: Cap::new(cap),
        }
    }

    /// The batch's answer: its results, those past the cap answered 507. `ids` are
    /// the batch's op ids, as [`run`] gives them back.
    pub(crate) fn into_response(
        mut self,
        ids: Vec<Text>,
        include_headers: bool,
        layout: Layout,
    ) -> BatchResponse {
        let missing = self.results.iter_mut().zip(self.came).zip(ids);
        for ((result, _), id) in missing.filter(|((_, came), _)| !came) {
            *result = self.cap.unanswered(id, result.silent);
        }
        BatchResponse {
            results: self.results,
            include_headers,
            layout,
        }
    }

    /// Keeps op `index`'s result, unless it takes the results past the cap.
    fn keep(&mut self, index: usize, result: OpResult) -> ControlFlow<()> {
        if !self.cap.admits(&result) {
            // The result may hold the op's only id: it names the op's 507.
            if let (Some(slot), Some(came)) =
                (self.results.get_mut(index), self.came.get_mut(index))
            {
                *slot = over_cap_result(result.id, result.silent);
                *came = true;
            }
            return ControlFlow::Break(());
        }
        // Stored in each branch: a result chosen first and stored once is moved once
        // more (about +40 instructions per op).
        if let (Some(slot), Some(came)) = (self.results.get_mut(index), self.came.get_mut(index)) {
            if *came {
                *slot = result;
            } else {
                // The slot holds its stand-in, which owns nothing (an empty id, an
                // empty map, no body): forgotten rather than dropped, it costs no
                // drop of its parts and leaks nothing.
                std::mem::forget(std::mem::replace(slot, result));
                *came = true;
            }
        }
        ControlFlow::Continue(())
    }
}

impl Sink for Collect {
    // Collecting never waits: the result is put away now, not moved into a future
    // that puts it away when polled.
    fn put(&mut self, index: usize, result: OpResult) -> impl Future<Output = ControlFlow<()>> {
        std::future::ready(self.keep(index, result))
    }
}

/// The buffered native answer, written as the results come rather than collected
/// and written at the end: each result goes in (and is dropped) once the results
/// before it are in, so the memory of one op's result is there for the next op's.
/// A result that comes before an earlier op's waits for it. The whole-batch cap
/// ([`Config::max_batch_response`]) weighs the results as [`Collect`] does.
pub(crate) struct Writing {
    answer: native::Answer,
    /// The op whose result goes in next.
    next: usize,
    /// The results that came before an earlier op's, until their turn. Empty, with
    /// no room made, until one does.
    early: Vec<Option<OpResult>>,
    /// How many ops the batch has.
    ops: usize,
    cap: Cap,
    tally: Tally,
    /// A result's header map, emptied for the answer's own: see [`Sink::recycle`].
    headers: Option<HeaderMap>,
}

impl Writing {
    /// An answer for the ops of `plan`, their results holding at most `cap` bytes.
    pub(crate) fn new(plan: &Plan, cap: usize) -> Self {
        Self {
            answer: native::Answer::new(plan.ops.len(), plan.include_headers),
            next: 0,
            early: Vec::new(),
            ops: plan.ops.len(),
            cap: Cap::new(cap),
            tally: Tally::default(),
            headers: None,
        }
    }

    /// The batch's answer, with the tally of its results: the results that never
    /// came are answered as [`Collect::into_response`] answers them. `ids` are the
    /// batch's op ids, as [`run`] gives them back.
    pub(crate) fn into_response(mut self, ids: Vec<Text>) -> (Tally, Response<Bytes>) {
        // Nearly always every result is in: the ids are then dropped as a list, not
        // walked past one by one.
        if self.next < ids.len() {
            for (index, id) in ids.into_iter().enumerate().skip(self.next) {
                match self.early.get_mut(index).and_then(Option::take) {
                    Some(result) => self.write(result.parts()),
                    // A stand-in fails (500 or 507), and a failure is written whole
                    // whether its op is silent or not: the ops' `silent` is not kept.
                    None => self.write(self.cap.unanswered(id, false).parts()),
                }
            }
        }
        let headers = self.headers.unwrap_or_default();
        (self.tally, self.answer.into_response(headers))
    }

    /// Puts op `index`'s result in the answer, or aside until its turn; past the
    /// cap, its 507 instead.
    #[inline(always)]
    fn take(&mut self, index: usize, result: OpResult) -> ControlFlow<()> {
        let admitted = self.cap.admits(&result);
        if admitted && index == self.next {
            // Written from where the engine made it, then dropped: its memory goes
            // back to the allocator before the next op's answer is made. (Handed to
            // `place`, it would be copied there first: 176 bytes.)
            self.write(result.parts());
            drop(result);
            self.write_early();
            return ControlFlow::Continue(());
        }
        self.place_otherwise(index, result, admitted)
    }

    /// Puts op `index`'s result aside until its turn, or, unless it was
    /// `admitted`, its 507 in the answer (or aside) in its place.
    #[inline(never)]
    fn place_otherwise(
        &mut self,
        index: usize,
        result: OpResult,
        admitted: bool,
    ) -> ControlFlow<()> {
        if !admitted {
            // The result may hold the op's only id: it names the op's 507.
            self.place(index, over_cap_result(result.id, result.silent));
            return ControlFlow::Break(());
        }
        self.place(index, result);
        ControlFlow::Continue(())
    }

    /// Writes op `index`'s result, and the early ones after it, if its turn has
    /// come; otherwise puts it aside.
    fn place(&mut self, index: usize, result: OpResult) {
        if index == self.next {
            self.write(result.parts());
            drop(result);
            self.write_early();
        } else if index > self.next {
            if self.early.is_empty() {
                self.early.resize_with(self.ops, || None);
            }
            if let Some(slot) = self.early.get_mut(index) {
                *slot = Some(result);
            }
        }
    }

    /// Writes the results that came early and whose turn has come.
    #[inline(always)]
    fn write_early(&mut self) {
        while let Some(result) = self.early.get_mut(self.next).and_then(Option::take) {
            self.write(result.parts());
        }
    }

    /// Writes the next op's result.
    fn write(&mut self, result: ResultParts<'_>) {
        self.write_inlined(result);
    }

    /// [`Writing::write`], always inlined: where the run writes nearly every result
    /// (`Sink::written`), a call cost ~14 instructions an op more. Elsewhere the call
    /// is kept, its callers being rarer (inlined into them all, it cost more).
    #[inline(always)]
    fn write_inlined(&mut self, result: ResultParts<'_>) {
        self.tally.add(result.status);
        self.answer.push(result);
        self.next += 1;
    }
}

impl Sink for Writing {
    // Writing never waits, as collecting does not.
    fn put(&mut self, index: usize, result: OpResult) -> impl Future<Output = ControlFlow<()>> {
        std::future::ready(self.take(index, result))
    }

    // The result whose turn has come, under the cap, is written from where its
    // parts lie; any other is made and put (put aside, or answered 507).
    // Always inlined into the run, as `Cap::admits_parts` and `Started::answered`
    // are: any one of the three left out of line costs 20-30 instructions an op
    // (written alone inlined, the cap's check is put out of line instead).
    #[inline(always)]
    fn written(&mut self, index: usize, result: ResultParts<'_>) -> Option<ControlFlow<()>> {
        if index != self.next || !self.cap.admits_parts(result.headers, result.body) {
            return None;
        }
        self.write_inlined(result);
        self.write_early();
        Some(ControlFlow::Continue(()))
    }

    #[inline(always)]
    fn recycle(&mut self, headers: HeaderMap) {
        self.headers = Some(headers);
    }
}

/// The whole-batch cap on the bytes of the results in a buffered answer: once over,
/// the results not in are answered 507.
struct Cap {
    /// Bytes of headers and bodies in so far.
    held: usize,
    cap: usize,
    /// Whether the cap was reached.
    over: bool,
}

impl Cap {
    fn new(cap: usize) -> Self {
        Self {
            held: 0,
            cap,
            over: false,
        }
    }

    /// Counts `result` in, unless it takes the results past the cap: then the
    /// cap is reached.
    fn admits(&mut self, result: &OpResult) -> bool {
        self.held = self
            .held
            .saturating_add(held_size(&result.headers, &result.body));
        if self.held > self.cap {
            self.over = true;
        }
        !self.over
    }

    /// Counts a result of `headers` and `body` in if it stays under the cap;
    /// otherwise counts nothing.
    // Always inlined: see `Writing::written`.
    #[inline(always)]
    fn admits_parts(&mut self, headers: &HeaderMap, body: &ResultBody) -> bool {
        let held = self.held.saturating_add(held_size(headers, body));
        if self.over || held > self.cap {
            return false;
        }
        self.held = held;
        true
    }

    /// The result of op `id`, whose result never came: 507 once the cap was
    /// reached, otherwise a bare 500.
    fn unanswered(&self, id: Text, silent: bool) -> OpResult {
        if self.over {
            over_cap_result(id, silent)
        } else {
            OpResult {
                silent,
                ..OpResult::new(id, StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

/// What a result weighs against the whole-batch cap: its body and headers.
#[inline]
fn held_size(headers: &HeaderMap, body: &ResultBody) -> usize {
    let weight = |(name, value): (&HeaderName, &HeaderValue)| name.as_str().len() + value.len();
    // Most answers carry one header: taken as the first, without the iterator's
    // loop (~20 instructions per op).
    let headers: usize = if headers.len() == 1 {
        headers.iter().next().map_or(0, weight)
    } else {
        headers.iter().map(weight).sum()
    };
    body.as_bytes().len() + headers
}

/// An op's result as its answer gives it (status, headers, body), before
/// [`State::result`] gives it the op's id and `silent`: built once, where the result
/// will go out from, and finished in place rather than taken apart and built again.
fn outcome(status: StatusCode, headers: HeaderMap, body: ResultBody) -> OpResult {
    OpResult {
        id: Text::default(),
        status,
        headers,
        body,
        silent: false,
    }
}

/// What the engine knows between polls: which ops finished, which wait, which are ready.
struct State {
    /// The batch as planned, kept in its box: its parts are read there, not moved
    /// into the batch's future (~190 bytes, copied with it). Each op's id is taken
    /// by the op's result once it finished, unless a dependent may name it (a
    /// result written from its parts reads it there); each op's request is taken
    /// when it starts.
    plan: Box<Plan>,
    /// Where each op stands, in one list: a batch makes one allocation for them all.
    /// Empty, with no room made, when no op waits for or refers to another (most
    /// batches): nothing reads an op's progress then.
    progress: Vec<Progress>,
    /// The results other ops refer to, kept until the batch ends (the sink takes
    /// every result as it comes; these are copies). Empty, with no room made, when
    /// no op refers to another's result.
    kept: Vec<Option<OpResult>>,
    /// The results a finished op settled with its own (its dependents' 424s),
    /// until the sink is handed them.
    done: Vec<(usize, OpResult)>,
    /// The 424s (and 412s) a finishing op cascades to, until each is settled in
    /// turn: one list for the batch, which a batch without them never allocates.
    cascade: Vec<(usize, OpResult)>,
    /// Where to look for the next op that waits for none, ready from the start:
    /// those are taken in order, with no heap to build (most batches have no other).
    unwaiting: usize,
    /// The ops released since, as their last dependency finished.
    released: BinaryHeap<Reverse<usize>>,
    /// How many ops were neither taken to start nor answered by a cascade: none is
    /// left to start once it is 0.
    unstarted: usize,
    halted: bool,
}

/// Where an op stands.
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// How many of its dependencies have not finished.
    waiting_for: usize,
    /// Its status, once it finished.
    status: Option<StatusCode>,
    /// Whether some op refers to its result.
    referred: bool,
}

impl State {
    fn new(plan: Box<Plan>) -> Self {
        // An op's progress is read only for the ops that wait for it, and to keep
        // its result for the ops that refer to it (which wait for it too): a batch
        // without either makes no record.
        let (graph, links) = (&plan.graph, &plan.links);
        let mut progress: Vec<Progress> = if graph.is_empty() && links.is_empty() {
            Vec::new()
        } else {
            (0..plan.ops.len())
                .map(|op| Progress {
                    waiting_for: graph.deps(op).len(),
                    status: None,
                    referred: false,
                })
                .collect()
        };
        for op in links.iter().flatten().flat_map(|links| links.ops()) {
            if let Some(op) = progress.get_mut(op) {
                op.referred = true;
            }
        }
        // Only the results of ops referred to are kept (and read): a batch without
        // references makes no room for any.
        let kept = if progress.iter().any(|op| op.referred) {
            vec![None; plan.ids.len()]
        } else {
            Vec::new()
        };
        Self {
            unstarted: plan.ops.len(),
            progress,
            kept,
            plan,
            done: Vec::new(),
            cascade: Vec::new(),
            unwaiting: 0,
            released: BinaryHeap::new(),
            halted: false,
        }
    }

    /// Takes the ready op to start next, lowest index first (so a sequential batch
    /// runs in request order): one that waits for none, or one released since.
    // Always inlined into the run, with the graph's look-ups it makes: a call an op
    // (~20 instructions).
    #[inline(always)]
    fn next_ready(&mut self) -> Option<usize> {
        while self.unwaiting < self.plan.ops.len()
            && !self.plan.graph.deps(self.unwaiting).is_empty()
        {
            self.unwaiting += 1;
        }
        let unwaiting = (self.unwaiting < self.plan.ops.len()).then_some(self.unwaiting);
        let next = match (unwaiting, self.released.peek()) {
            (Some(op), Some(&Reverse(released))) if released < op => {
                self.released.pop();
                released
            }
            (Some(op), _) => {
                self.unwaiting += 1;
                op
            }
            (None, _) => self.released.pop()?.0,
        };
        self.unstarted -= 1;
        Some(next)
    }

    /// Records the outcome of op `index` (`result`, made its result here), as
    /// [`State::settle_all`] does.
    fn finish(&mut self, index: usize, result: &mut OpResult) {
        self.settle_all(index, result.status);
        self.result(index, result);
    }

    /// Whether op `index`'s result is kept for the ops that refer to it.
    #[inline(always)]
    fn keeps(&self, index: usize) -> bool {
        self.progress.get(index).is_some_and(|op| op.referred)
    }

    /// Records that op `index` finished with `status`, then releases its dependents
    /// whose every dependency succeeded and answers 424 for the others,
    /// transitively; the results of the 424s are in `done`. Its own result is made
    /// apart, by [`State::result`], or written from its parts.
    #[inline(always)]
    fn settle_all(&mut self, index: usize, status: StatusCode) {
        self.settle(index, status);
        while let Some((index, mut settled)) = self.cascade.pop() {
            // Answered here, it will never start.
            self.unstarted -= 1;
            self.settle(index, settled.status);
            self.result(index, &mut settled);
            self.done.push((index, settled));
        }
    }

    /// [`State::finish`] for a result held by value: it goes on, made the op's
    /// result, without a place of its own in the batch's future.
    fn finished(&mut self, index: usize, mut result: OpResult) -> OpResult {
        self.finish(index, &mut result);
        result
    }

    /// Records that op `index` finished with `status`, and releases its dependents
    /// or adds their 424s to `cascade`. Its result is made apart, by
    /// [`State::result`].
    #[inline(always)]
    fn settle(&mut self, index: usize, status: StatusCode) {
        if status.as_u16() >= 400 && self.plan.on_error == OnError::Stop {
            self.halted = true;
        }
        if let Some(op) = self.progress.get_mut(index) {
            op.status = Some(status);
        }
        for &dependent in self.plan.graph.dependents(index) {
            self.progress[dependent].waiting_for -= 1;
            if self.progress[dependent].waiting_for > 0 {
                continue;
            }
            // Every dependency has finished: its result is in. An op with a
            // condition runs on it instead of on its dependencies' success.
            let condition = self
                .plan
                .terms
                .get(dependent)
                .and_then(|terms| terms.condition.as_ref());
            let blocked = match condition {
                Some(condition) => {
                    let succeeded =
                        |dep: usize| self.progress[dep].status.is_some_and(|s| s.is_success());
                    (!condition.holds(&succeeded))
                        .then(|| not_run(StatusCode::PRECONDITION_FAILED, "condition_false", None))
                }
                None => self
                    .plan
                    .graph
                    .deps(dependent)
                    .iter()
                    .find(|&&dep| self.progress[dep].status.is_some_and(|s| s.as_u16() >= 400))
                    .map(|&dep| {
                        not_run(
                            StatusCode::FAILED_DEPENDENCY,
                            "dependency_failed",
                            Some(&self.plan.ids[dep]),
                        )
                    }),
            };
            match blocked {
                None => self.released.push(Reverse(dependent)),
                Some(outcome) => self.cascade.push((dependent, outcome)),
            }
        }
    }

    /// Makes op `index`'s outcome its result, in place: the op's id and `silent`. A
    /// copy is kept if some op refers to it.
    #[inline(always)]
    fn result(&mut self, index: usize, result: &mut OpResult) {
        // An op's id is named again only by a dependent it failed: without
        // dependents, the result takes the id itself rather than a copy.
        result.id = if self.plan.graph.dependents(index).is_empty() {
            std::mem::take(&mut self.plan.ids[index])
        } else {
            self.plan.ids[index].clone()
        };
        result.silent = self.plan.terms.silent(index);
        if self.keeps(index) {
            self.kept[index] = Some(result.clone());
        }
    }
}

/// Publishes through `hub` the change an op made, if it made one (`mutation`, and
/// an `outcome` that succeeded). Done before its dependents are settled.
// Always inlined: most batches have no hub, and a call to learn that costs ~14
// instructions per op.
#[inline(always)]
fn publish(
    mutation: Option<Box<Mutation>>,
    hub: Option<&dyn Hub>,
    status: StatusCode,
    headers: &HeaderMap,
    body: &ResultBody,
) {
    if let (Some(mutation), Some(hub)) = (mutation, hub)
        && let Some(event) = mutation.event(status, headers, body)
    {
        hub.publish(event);
    }
}

/// Runs op `index`'s hooks, one after another, then, unless one refused it, the op.
/// A refusal is the op's answer, as if the application had given it.
async fn checked<E: Executor>(
    executor: &E,
    hooks: &[OpHook],
    index: usize,
    id: Text,
    request: Request<Bytes>,
    limit: usize,
) -> Result<Response<Bytes>, ExecuteError> {
    let view = OpView::new(index, &id, &request);
    for hook in hooks {
        if let Err(refusal) = hook(&view).await {
            return Ok(refused(refusal));
        }
    }
    executor.execute(request, limit).await
}

/// An op that has been started: what its answer is read with.
struct Started {
    index: usize,
    is_head: bool,
    /// When it started (the start of its round).
    began: Instant,
    /// The op's change, to publish if it succeeds.
    mutation: Option<Box<Mutation>>,
    /// Its span, given its status and duration when it answers.
    span: Span,
}

/// An op's answer, unless the handler panicked.
type Caught = std::thread::Result<Result<Response<Bytes>, ExecuteError>>;

/// An op's answer, unless the handler panicked or the op ran out of time.
type Answer = Result<Caught, Elapsed>;

impl Started {
    /// Waits for an op that did not answer on its first poll, until `deadline`.
    /// `waiting` counts it in flight until it answers, or until this future is
    /// dropped unanswered.
    fn wait<F>(
        self,
        call: Pin<Box<F>>,
        deadline: Instant,
        waiting: Waiting,
        meter: &OpMeter,
    ) -> impl Future<Output = (usize, OpResult, Option<Box<Mutation>>)>
    where
        F: Future<Output = Result<Response<Bytes>, ExecuteError>> + ?Sized,
    {
        // Entered at every poll, and when it is dropped: what the application logs
        // for the op is the op's, as in its first poll.
        let call = call.instrument(self.span.clone());
        async move {
            let answer = timeout_at(deadline, AssertUnwindSafe(call).catch_unwind()).await;
            drop(waiting);
            let outcome = self.outcome(answer);
            self.answered(outcome.status, meter);
            (self.index, outcome, self.mutation)
        }
    }

    /// Tells the op's span and `meter` that it ended with `status`. Kept apart from
    /// [`Started::outcome`], so that the outcome goes straight to the caller rather
    /// than through here (a copy of it fewer).
    // Always inlined: see `Writing::written`.
    #[inline(always)]
    fn answered(&self, status: StatusCode, meter: &OpMeter) {
        // The clock is read only for what records the time. A span that is none
        // (no subscriber wants it, and no `log` either) records nothing, and the
        // histogram reads `Since` only if a recorder is installed: most runs read
        // no clock here (~110 instructions per op).
        if self.span.is_none() {
            meter.answered(Since(self.began));
            return;
        }
        let elapsed = self.began.elapsed();
        meter.answered(elapsed);
        self.span.record("status", status.as_u16());
        self.span
            .record("duration_ms", elapsed.as_secs_f64() * 1000.0);
    }

    /// The op's outcome from its answer: a panic, an error or a timeout become the
    /// engine's own answer.
    fn outcome(&self, answer: Answer) -> OpResult {
        match answer {
            Err(_elapsed) => timed_out(),
            Ok(answer) => self.answer(answer),
        }
    }

    /// The op's outcome from the answer it gave in time: a panic or an error become
    /// the engine's own answer.
    fn answer(&self, answer: Caught) -> OpResult {
        match answer {
            Err(_panic) => {
                tracing::error!(op = self.index, "operation handler panicked");
                internal_error()
            }
            Ok(Err(ExecuteError::ResponseTooLarge { .. })) => too_large(),
            Ok(Err(ExecuteError::Failed(err))) => {
                tracing::warn!(op = self.index, error = %err, "operation failed");
                internal_error()
            }
            Ok(Ok(response)) => completed(response, self.is_head),
        }
    }
}

/// `future` in the box of `spare`, the future of an op that answered at once (dropped
/// here), or in a new box: a batch of ops that answer at once allocates one box.
// Inlined, the future is moved into its box without a copy on the way, which would
// cost about what reusing the box saves.
#[inline(always)]
fn boxed<F: Future>(spare: &mut Option<Pin<Box<F>>>, future: F) -> Pin<Box<F>> {
    match spare.take() {
        Some(mut slot) => {
            slot.set(future);
            slot
        }
        None => Box::pin(future),
    }
}

/// Polls `future` once, in `span`, and says what that poll gave, without waiting; a
/// panic in that poll is caught and given as its `Err`, as `catch_unwind` gives it.
// Caught here rather than by `FutureExt::catch_unwind`: its poll, left out of line
// when the batch's future changes shape, copied each answer twice more (~45 per op).
fn poll_once<'a, F: Future + ?Sized>(
    mut future: Pin<&'a mut F>,
    span: &'a Span,
) -> impl Future<Output = Poll<std::thread::Result<F::Output>>> + 'a {
    std::future::poll_fn(move |cx| {
        // What the application logs for the op is the op's.
        let _entered = span.enter();
        // The answer is made its `Ok` inside, not taken out and put back: two copies
        // of it fewer.
        let polled =
            std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx).map(Ok)));
        Poll::Ready(polled.unwrap_or_else(|panic| Poll::Ready(Err(panic))))
    })
}

/// The answer to an op a hook refused: the refusal's status and headers, and
/// `{"error": ...}`.
fn refused(refusal: Refusal) -> Response<Bytes> {
    let body = NotRun {
        error: &refusal.error,
        dependency: None,
    };
    // A struct of two strings always serialises.
    let mut response = Response::new(Bytes::from(serde_json::to_vec(&body).unwrap_or_default()));
    *response.status_mut() = refusal.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in refusal.headers {
        headers.append(name, value);
    }
    response
}

fn completed(response: Response<Bytes>, is_head: bool) -> OpResult {
    let (parts, body) = response.into_parts();
    let body = body_of(&parts.headers, body, is_head);
    outcome(parts.status, parts.headers, body)
}

/// A response's `body` as its op's result carries it: none for a HEAD (whatever the
/// application sent), otherwise classified by its `headers`.
#[inline(always)]
fn body_of(headers: &HeaderMap, body: Bytes, is_head: bool) -> ResultBody {
    if is_head {
        ResultBody::Empty
    } else {
        ResultBody::classify(headers, body)
    }
}

/// The body of an op the engine answered itself, fields in the documented order.
#[derive(Serialize)]
struct NotRun<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dependency: Option<&'a str>,
}

fn not_run(status: StatusCode, error: &str, dependency: Option<&str>) -> OpResult {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = ResultBody::json(&NotRun { error, dependency });
    outcome(status, headers, body)
}

fn timed_out() -> OpResult {
    not_run(StatusCode::GATEWAY_TIMEOUT, "timeout", None)
}

fn internal_error() -> OpResult {
    not_run(StatusCode::INTERNAL_SERVER_ERROR, "internal", None)
}

fn too_large() -> OpResult {
    not_run(StatusCode::BAD_GATEWAY, "response_too_large", None)
}

/// Op `id`'s result once the batch's results outgrew the whole-batch cap.
fn over_cap_result(id: Text, silent: bool) -> OpResult {
    OpResult {
        id,
        silent,
        ..not_run(
            StatusCode::INSUFFICIENT_STORAGE,
            "batch_response_too_large",
            None,
        )
    }
}
