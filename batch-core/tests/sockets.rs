//! Real-time resources over real WebSockets, on `BatchLayer` over hyper.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::Duration;

use batch_core::{BatchEndpoint, Config, SocketConfig};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn config(sockets: SocketConfig) -> Config {
    Config::builder().sockets(sockets).build().unwrap()
}

async fn open(addr: std::net::SocketAddr) -> Socket {
    let (socket, response) = tokio_tungstenite::connect_async(format!("ws://{addr}/socket"))
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// A state or change event without its `seq` cursor, which differs from run to
/// run; every such message must carry one.
fn without_seq(mut message: Value) -> Value {
    let kind = message["type"].as_str().unwrap_or_default();
    if ["state", "create", "patch", "delete"].contains(&kind) {
        let seq = message.as_object_mut().and_then(|m| m.remove("seq"));
        assert!(matches!(seq, Some(Value::String(_))), "no seq in {message}");
    }
    message
}

/// The next JSON message (its `seq` checked and removed), within 5 s.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a message within 5 s")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = message {
            return without_seq(serde_json::from_str(&text).unwrap());
        }
    }
}

#[tokio::test]
async fn subscribers_see_state_then_every_change_from_every_source() {
    let endpoint = BatchEndpoint::new(config(SocketConfig::default()));
    let (addr, _items) = common::app::serve(endpoint).await;
    let mut socket = open(addr).await;

    send(
        &mut socket,
        json!({"type": "subscribe", "uri": "/items/", "ref": "s1"}),
    )
    .await;
    assert_eq!(
        next(&mut socket).await,
        json!({"type": "state", "uri": "/items/", "resource": [], "ref": "s1"})
    );
    send(
        &mut socket,
        json!({"type": "subscribe", "uri": "/items/1", "ref": "s2"}),
    )
    .await;
    let missing = next(&mut socket).await;
    assert_eq!(
        (
            missing["type"].as_str(),
            missing["status"].as_u64(),
            missing["ref"].as_str()
        ),
        (Some("error"), Some(404), Some("s2"))
    );

    // A socket message.
    send(
        &mut socket,
        json!({"type": "create", "uri": "/items/", "attributes": {"name": "pen"}, "ref": "c"}),
    )
    .await;
    let (first, second) = (next(&mut socket).await, next(&mut socket).await);
    let (event, result) = if first["type"] == "create" {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(
        event,
        json!({"type": "create", "uri": "/items/", "resource": {"id": 1, "name": "pen"}, "location": "/items/1"})
    );
    assert_eq!(
        (
            result["type"].as_str(),
            result["status"].as_u64(),
            result["ref"].as_str()
        ),
        (Some("result"), Some(201), Some("c"))
    );

    // A plain HTTP request.
    let client = reqwest_free_patch(addr, "/items/1", r#"{"name": "ink"}"#).await;
    assert_eq!(client, 200);
    assert_eq!(
        next(&mut socket).await,
        json!({"type": "patch", "uri": "/items/1", "patch": {"name": "ink"}})
    );
    // A plain creation: its event carries the answer's body, which hyper stops
    // polling once it has sent content-length bytes.
    let created = raw(addr, &format!(
        "POST /items HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: 15\r\nconnection: close\r\n\r\n{{\"name\": \"cap\"}}"
    )).await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    assert_eq!(
        next(&mut socket).await,
        json!({"type": "create", "uri": "/items/", "resource": {"id": 2, "name": "cap"}, "location": "/items/2"})
    );

    // An op of a batch.
    let response = post_batch(addr, r#"{"ops": [{"method": "DELETE", "url": "/items/1"}, {"method": "DELETE", "url": "/items/1"}]}"#).await;
    assert!(response.contains(r#""status":204"#), "{response}");
    assert_eq!(
        next(&mut socket).await,
        json!({"type": "delete", "uri": "/items/1"})
    );
    // The second DELETE was refused (404): no event for it.
    send(
        &mut socket,
        json!({"type": "unsubscribe", "uri": "/items/", "ref": "u"}),
    )
    .await;
    assert_eq!(
        next(&mut socket).await,
        json!({"type": "unsubscribed", "uri": "/items/", "ref": "u"})
    );
}

/// Sends `PATCH path` with a JSON body over HTTP/1.1 and returns the status.
async fn reqwest_free_patch(addr: std::net::SocketAddr, path: &str, body: &str) -> u16 {
    let text = raw(addr, &format!(
        "PATCH {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )).await;
    text[9..12].parse().unwrap()
}

async fn post_batch(addr: std::net::SocketAddr, body: &str) -> String {
    raw(addr, &format!(
        "POST /batch HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )).await
}

async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8(response).unwrap()
}

#[tokio::test]
async fn a_plain_http_post_publishes_its_create_with_the_answered_resource() {
    let endpoint = BatchEndpoint::new(config(SocketConfig::default()));
    let (addr, _items) = common::app::serve(endpoint).await;
    let mut socket = open(addr).await;
    send(&mut socket, json!({"type": "subscribe", "uri": "/items/"})).await;
    assert_eq!(next(&mut socket).await["type"], "state");

    // The answer has a content length: hyper stops polling its body once that many
    // bytes are written, before the body says it ended.
    let body = r#"{"name": "pen"}"#;
    let response = raw(addr, &format!(
        "POST /items HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )).await;
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("content-length"),
        "{response}"
    );
    assert_eq!(
        next(&mut socket).await,
        json!({"type": "create", "uri": "/items/", "resource": {"id": 1, "name": "pen"}, "location": "/items/1"})
    );
}
