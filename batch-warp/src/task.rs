//! Dispatching through the filter tree from inside a filter: warp keeps the request
//! being filtered in a scoped thread-local and, in debug builds, panics when one
//! route is dispatched while another is being polled, so such work runs on a task
//! of its own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use batch_core::Problem;
use bytes::Bytes;
use http::{Response, StatusCode};
use tokio::task::{JoinError, JoinHandle};
use tracing::Instrument;

/// Runs `work` on a task of its own, aborted when the returned future is dropped
/// (the outer request went away), so nothing outlives the client that asked for it.
/// The task runs in the caller's span, which a new task would otherwise lose: the
/// batch's span, and its ops', are children of the request's.
pub(crate) fn spawn<F>(work: F) -> AbortOnDrop<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    AbortOnDrop(tokio::spawn(work.in_current_span()))
}

/// A task, aborted when this handle is dropped.
pub(crate) struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// 500 for a task that ended without an answer: the engine isolates op panics, so
/// this is a panic of its own or a runtime shutting down.
pub(crate) fn failed(err: &JoinError) -> Response<Bytes> {
    let detail = if err.is_panic() {
        "the request failed while running"
    } else {
        "the request was cancelled"
    };
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, detail).into_response()
}
