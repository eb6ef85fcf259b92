//! Results streamed as NDJSON (`content-type: application/x-ndjson`, one native
//! result per line with its op's `index`, then a `done` line), from a small hyper
//! server on 127.0.0.1 that writes each line only when the test lets it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use batch_client::{Client, Error};
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// What the server streams for a batch of `n` ops: results from the last op to the
/// first, each after taking one permit of `gate`, then `done` unless `truncate`.
#[derive(Clone)]
struct Streamer {
    gate: Arc<Semaphore>,
    truncate: bool,
}

async fn answer(
    streamer: Streamer,
    request: Request<Incoming>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    if request.method() != Method::POST {
        let mut not_found = Response::new(BodyExt::boxed(Full::new(Bytes::new())));
        *not_found.status_mut() = http::StatusCode::NOT_FOUND;
        return Ok(not_found);
    }
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let batch: Value = serde_json::from_slice(&body).unwrap();
    let count = batch["ops"].as_array().unwrap().len();
    let truncate = streamer.truncate;
    let lines = futures::stream::iter((0..count).rev())
        .then(move |index| {
            let streamer = streamer.clone();
            async move {
                streamer.gate.acquire().await.unwrap().forget();
                let result = json!({"index": index, "id": index.to_string(), "status": 200,
                    "headers": {"content-type": "application/json"}, "body": {"op": index}});
                Frame::data(Bytes::from(format!("{result}\n")))
            }
        })
        .take(if truncate { 1 } else { count })
        .chain(futures::stream::iter((!truncate).then(|| {
            Frame::data(Bytes::from(format!(
                "{}\n",
                json!({"done": true, "ops": count, "failed": 0})
            )))
        })))
        .map(Ok::<_, Infallible>);
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(lines)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// Serves `streamer` on a free port of 127.0.0.1; the batch URL.
async fn serve(streamer: Streamer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let streamer = streamer.clone();
            let service =
                hyper::service::service_fn(move |request| answer(streamer.clone(), request));
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    format!("http://{addr}/batch")
}

/// A server that writes every line at once, the `done` line too unless `truncate`.
async fn serve_ungated(truncate: bool) -> String {
    let gate = Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
    serve(Streamer { gate, truncate }).await
}

#[tokio::test]
async fn streamed_results_arrive_one_by_one_as_the_server_writes_them() {
    let gate = Arc::new(Semaphore::new(1));
    let url = serve(Streamer {
        gate: gate.clone(),
        truncate: false,
    })
    .await;
    let client = Client::new(&url).unwrap();
    let mut results = client.batch().get("/a").get("/b").get("/c").stream();
    // The server holds the other results back: this one came alone.
    let first = tokio::time::timeout(Duration::from_secs(5), results.next())
        .await
        .expect("the first result arrives before the others are written")
        .unwrap()
        .unwrap();
    assert_eq!(first.index, 2);
    assert_eq!(first.json::<Value>().unwrap(), json!({"op": 2}));
    gate.add_permits(2);
    let rest: Vec<usize> = results.map(|r| r.unwrap().index).collect().await;
    assert_eq!(rest, [1, 0]);
}

#[tokio::test]
async fn send_orders_streamed_results_and_a_cut_stream_is_an_error() {
    let two_ops = |url: String| async move {
        let client = Client::new(&url).unwrap();
        client.batch().get("/a").get("/b").send().await
    };
    let results = two_ops(serve_ungated(false).await).await.unwrap();
    let indices: Vec<usize> = results.iter().map(|r| r.index).collect();
    assert_eq!(indices, [0, 1]);

    match two_ops(serve_ungated(true).await).await {
        Err(Error::Answer(message)) => assert!(message.contains("1 of 2"), "{message}"),
        other => panic!("{other:?}"),
    }
}
