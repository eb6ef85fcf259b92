//! What an application logs while it answers an op is inside the op's span: for an
//! op that answers on its first poll and for one that waits, as a subscriber sees
//! the spans entered around the event.
//!
//! The subscriber is set for this test's thread only (`with_default`), and the file
//! is its own test process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use batch_core::{BatchEndpoint, Config, ExecuteError, Executor};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use serde_json::json;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Keeps the name of every span it makes and the stack of those entered, and
/// records, for each event of the application's, the names of the spans it happened
/// in (innermost last).
#[derive(Default)]
struct Stacks {
    next: AtomicU64,
    names: Mutex<Vec<&'static str>>,
    entered: Mutex<Vec<u64>>,
    events: Mutex<Vec<Vec<&'static str>>>,
}

impl Subscriber for Stacks {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.names.lock().unwrap().push(span.metadata().name());
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() != "app" {
            return;
        }
        let names = self.names.lock().unwrap();
        let stack = self.entered.lock().unwrap();
        let spans = stack.iter().map(|id| names[*id as usize - 1]).collect();
        self.events.lock().unwrap().push(spans);
    }

    fn enter(&self, span: &Id) {
        self.entered.lock().unwrap().push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut stack = self.entered.lock().unwrap();
        if let Some(at) = stack.iter().rposition(|id| *id == span.into_u64()) {
            stack.remove(at);
        }
    }
}

/// Logs an event as it answers; `/wait` first returns to the runtime once, so that
/// its op does not answer on its first poll.
struct Logs;

impl Executor for Logs {
    async fn execute(
        &self,
        request: Request<Bytes>,
        _max_response_body: usize,
    ) -> Result<Response<Bytes>, ExecuteError> {
        if request.uri().path() == "/wait" {
            tokio::task::yield_now().await;
        }
        tracing::info!(target: "app", "answering");
        Ok(Response::new(Bytes::new()))
    }
}

#[test]
fn what_an_op_logs_is_in_its_span_whether_it_answers_at_once_or_waits() {
    let stacks = std::sync::Arc::new(Stacks::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = json!({"ops": [{"url": "/now"}, {"url": "/wait"}]});
    let request = Request::post("/batch")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = tracing::subscriber::with_default(stacks.clone(), || {
        runtime.block_on(BatchEndpoint::new(Config::default()).handle(&Logs, request))
    });
    assert_eq!(response.status(), 200);
    let events = stacks.events.lock().unwrap().clone();
    let innermost: Vec<_> = events.iter().map(|spans| spans.last().copied()).collect();
    assert_eq!(innermost, [Some("op"), Some("op")], "{events:?}");
}
