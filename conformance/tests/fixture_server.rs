//! The fixture servers' own contract: the port is bound before `start` returns,
//! HTTP/2 prior knowledge works beside HTTP/1.1, and dropping the handle stops it.

use std::net::{SocketAddr, TcpListener, TcpStream};

use batch_core::Config;
use bytes::Bytes;
use conformance::fixture;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[test]
fn a_taken_port_is_an_error_from_start() {
    let taken = TcpListener::bind(localhost()).unwrap();
    let err = fixture::axum::start(taken.local_addr().unwrap(), Config::default()).err();
    assert_eq!(err.map(|e| e.kind()), Some(std::io::ErrorKind::AddrInUse));
}

#[test]
fn dropping_the_server_closes_its_port() {
    let server = fixture::axum::start(localhost(), Config::default()).unwrap();
    let addr = server.addr();
    assert_ne!(addr.port(), 0, "start reports the port it bound");
    TcpStream::connect(addr).unwrap();
    drop(server);
    assert!(TcpStream::connect(addr).is_err());
}

// Multi-thread, so the client's connection can answer the server's GOAWAY while the
// test thread blocks in the server's drop.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn http2_prior_knowledge_serves_direct_and_batch_requests() {
    let server = fixture::axum::start(localhost(), Config::default()).unwrap();
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let health = Request::get(format!("{}/health", server.url()))
        .body(Full::default())
        .unwrap();
    let response = client.request(health).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    let batch = Request::post(format!("{}/batch", server.url()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"ops": [{"url": "/health"}, {"url": "/text"}]}"#,
        )))
        .unwrap();
    let response = client.request(batch).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["results"][0]["body"], serde_json::json!({"ok": true}));
    assert_eq!(body["results"][1]["body"], "hello, world");
}
