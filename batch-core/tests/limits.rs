//! Limits that hold across batches.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod common;

use batch_core::{BatchEndpoint, Config, ExecuteError, Executor};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use serde_json::json;

/// Counts the ops running right now and the most ever seen at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
    ran: AtomicUsize,
}

impl Executor for Gauge {
    async fn execute(
        &self,
        _request: Request<Bytes>,
        _max_response_body: usize,
    ) -> Result<Response<Bytes>, ExecuteError> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.ran.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(Bytes::new()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_in_flight_never_exceed_the_server_wide_cap() {
    let cap = 12;
    let endpoint = BatchEndpoint::new(
        Config::builder()
            .max_in_flight(cap)
            .max_concurrency(5)
            .build()
            .unwrap(),
    );
    let gauge = Arc::new(Gauge::default());
    let ops: Vec<_> = (0..8).map(|i| json!({"url": format!("/op/{i}")})).collect();
    let body = Bytes::from(json!({ "ops": ops }).to_string());
    let batches = (0..40).map(|_| {
        let (endpoint, gauge, body) = (endpoint.clone(), Arc::clone(&gauge), body.clone());
        tokio::spawn(async move {
            let request = Request::post("/batch")
                .header("content-type", "application/json")
                .body(Full::new(body))
                .unwrap();
            endpoint.handle(&*gauge, request).await.status().as_u16()
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(batches)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let answered = statuses.iter().filter(|&&s| s == 200).count();
    let shed = statuses.iter().filter(|&&s| s == 503).count();
    assert_eq!(
        answered + shed,
        40,
        "every batch is answered or shed: {statuses:?}"
    );
    assert!(
        shed > 0,
        "40 batches of 5 concurrent ops exceed a cap of 12"
    );
    assert!(answered >= 2, "batches that fit run");
    assert!(
        gauge.peak.load(Ordering::SeqCst) <= cap,
        "peak {} > cap {cap}",
        gauge.peak.load(Ordering::SeqCst)
    );
    assert_eq!(gauge.ran.load(Ordering::SeqCst), answered * 8);
}

/// A client still sending a body somewhat over the limit when the server decides gets
/// to finish, and reads the 413 problem rather than a reset connection: the server
/// reads and discards the rest of the body before it answers and closes.
#[tokio::test]
async fn a_body_over_the_limit_gets_its_413_after_the_client_sent_it_all() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let limit = Config::default().max_body();
    let (addr, _items) = common::app::serve(BatchEndpoint::new(Config::default())).await;
    for body_len in [limit + 1, 2 * limit] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /batch HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {body_len}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // Half the body, a pause in which the server can decide, then the rest in
        // pieces, as a client on a slow link sends it.
        let half = vec![b' '; body_len / 2];
        stream.write_all(&half).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut sent = Ok(());
        for piece in vec![b' '; body_len - half.len()].chunks(64 * 1024) {
            sent = stream.write_all(piece).await;
            if sent.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            sent.is_ok(),
            "{body_len} bytes: reset while sending: {sent:?}"
        );
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            read.is_ok(),
            "{body_len} bytes: reset before the answer was read: {read:?}"
        );
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "{body_len} bytes: {answer}"
        );
        assert!(answer.contains("application/problem+json"), "{answer}");
    }
}
