//! The batch body is refused with 413 over `Config::max_body`, whether or not the
//! client declared its length.

mod common;

use batch_core::Config;
use std::time::Duration;

use common::{send, serve};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warp::Filter;

const LIMIT: usize = 64;

async fn server() -> Result<std::net::SocketAddr, batch_core::ConfigError> {
    let health = warp::path!("health").map(|| warp::reply::json(&json!({"ok": true})));
    let config = Config::builder().max_body(LIMIT).build()?;
    Ok(serve(batch_warp::with_batch(health, config)).await)
}

/// A valid batch padded with JSON whitespace to exactly `len` bytes.
fn batch_of(len: usize) -> Vec<u8> {
    let mut body = br#"{"ops": [{"url": "/health"}]}"#.to_vec();
    assert!(body.len() <= len);
    body.resize(len, b' ');
    body
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut framed = Vec::new();
    for chunk in body.chunks(10) {
        framed.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
    }
    framed.extend_from_slice(b"0\r\n\r\n");
    framed
}

#[tokio::test]
async fn a_body_of_exactly_the_limit_is_accepted() {
    let addr = server().await.unwrap();
    let head = format!(
        "POST /batch HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: {LIMIT}"
    );
    let answer = send(addr, &head, &batch_of(LIMIT)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["results"][0]["body"], json!({"ok": true}));
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_413() {
    let addr = server().await.unwrap();
    let head = format!(
        "POST /batch HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: {}",
        LIMIT + 1
    );
    let answer = send(addr, &head, &batch_of(LIMIT + 1)).await;
    assert_eq!(answer.status, 413);
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(answer.json()["status"], 413);
}

#[tokio::test]
async fn a_chunked_body_is_read_without_a_length_and_refused_over_the_limit() {
    let addr = server().await.unwrap();
    let head =
        "POST /batch HTTP/1.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked";
    let within = send(addr, head, &chunked(&batch_of(LIMIT))).await;
    assert_eq!(within.status, 200, "no 411: a length is not required");
    let over = send(addr, head, &chunked(&batch_of(LIMIT + 1))).await;
    assert_eq!(over.status, 413);
    assert_eq!(
        over.header("content-type"),
        Some("application/problem+json")
    );
}

#[tokio::test]
async fn a_refused_body_closes_the_connection_it_did_not_read() {
    let addr = server().await.unwrap();
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A keep-alive request whose body never comes: only closing answers it fully.
    let head = format!(
        "POST /batch HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        LIMIT + 1
    );
    client.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut raw))
        .await
        .expect("the server kept the connection open")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 413"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
}
