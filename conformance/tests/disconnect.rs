//! A client that leaves a streamed answer midway cancels the ops not yet finished,
//! on every adapter: read over a real socket up to the first result, then closed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::SocketAddr;
use std::time::Duration;

use batch_core::Config;
use bytes::Bytes;
use conformance::client::Client;
use fixture::Framework;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The fixture's request counter, read directly (which counts this request too).
async fn counter(client: &Client) -> u64 {
    let exchange = client
        .send("GET", "/counter", &[], Bytes::new())
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&exchange.body).unwrap();
    body["requests"].as_u64().unwrap()
}

/// Sends `batch` asking for NDJSON, reads until the first line has arrived, and
/// closes the connection.
async fn leave_after_the_first_line(addr: SocketAddr, batch: &Value) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let request = Request::post("/batch")
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .header("accept", "application/x-ndjson")
        .body(Full::new(Bytes::from(batch.to_string())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut read = Vec::new();
    while !read.contains(&b'\n') {
        let frame = body.frame().await.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            read.extend_from_slice(&data);
        }
    }
    drop(body);
    drop(sender);
    connection.abort();
    let _ = connection.await;
    String::from_utf8(read).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_mid_stream_cancels_the_ops_not_yet_finished() {
    for framework in Framework::ALL {
        let name = framework.name();
        let server = framework
            .start("127.0.0.1:0".parse().unwrap(), Config::default())
            .unwrap();
        let client = Client::new(&server.url());
        let before = counter(&client).await;
        // One at a time: the write after the slow op starts only if the batch lives on.
        let batch = json!({"sequential": true, "ops": [
            {"id": "fast", "url": "/health"},
            {"id": "slow", "url": "/slow?ms=1000"},
            {"id": "write", "method": "POST", "url": "/items", "body": {"name": "left"}}
        ]});
        let first = leave_after_the_first_line(server.addr(), &batch).await;
        assert!(
            first.starts_with(r#"{"index":0,"id":"fast","status":200"#),
            "{name}: {first}"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            counter(&client).await,
            before + 3,
            "{name}: the fast op, the slow one (started, then cancelled) and this read; \
             the write never started"
        );
    }
}
