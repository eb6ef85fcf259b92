//! Sockets on axum's own WebSocket support, over real connections: what a socket
//! sees of changes made every way, and the upgrades the endpoint refuses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use batch_core::{Config, SocketConfig};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Items = Arc<Mutex<BTreeMap<u64, String>>>;

/// `GET/POST /items`, `GET/PATCH/DELETE /items/{id}`, behind a middleware that
/// answers `authorization: Bearer deny` with 401.
fn app() -> Router {
    Router::new()
        .route("/items", get(list).post(create))
        .route("/items/{id}", get(read).patch(update).delete(remove))
        .layer(middleware::from_fn(deny))
        .with_state(Items::default())
}

async fn deny(request: Request, next: Next) -> Response {
    let denied = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v == "Bearer deny");
    if denied {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "denied"}))).into_response();
    }
    next.run(request).await
}

async fn list(State(items): State<Items>) -> Json<Value> {
    let items = items.lock().unwrap();
    Json(
        items
            .iter()
            .map(|(id, name)| json!({"id": id, "name": name}))
            .collect(),
    )
}

async fn create(State(items): State<Items>, Json(body): Json<Value>) -> Response {
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    let mut items = items.lock().unwrap();
    let id = items.keys().last().map_or(1, |last| last + 1);
    items.insert(id, name.clone());
    let location = [(header::LOCATION, format!("/items/{id}"))];
    (
        StatusCode::CREATED,
        location,
        Json(json!({"id": id, "name": name})),
    )
        .into_response()
}

async fn read(State(items): State<Items>, Path(id): Path<u64>) -> Response {
    match items.lock().unwrap().get(&id) {
        Some(name) => Json(json!({"id": id, "name": name})).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn update(
    State(items): State<Items>,
    Path(id): Path<u64>,
    Json(body): Json<Value>,
) -> Response {
    let mut items = items.lock().unwrap();
    let Some(name) = items.get_mut(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    body["name"].as_str().unwrap_or_default().clone_into(name);
    Json(json!({"id": id, "name": name})).into_response()
}

async fn remove(State(items): State<Items>, Path(id): Path<u64>) -> StatusCode {
    match items.lock().unwrap().remove(&id) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

fn sockets(sockets: SocketConfig) -> Config {
    Config::builder().sockets(sockets).build().unwrap()
}

async fn serve(config: Config) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = batch_axum::with_batch(app(), config);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Opens a socket with `headers` on the upgrade; a refusal is its HTTP status.
async fn connect(addr: SocketAddr, headers: &[(&str, &str)]) -> Result<Socket, u16> {
    let mut request = format!("ws://{addr}/socket").into_client_request().unwrap();
    for (name, value) in headers {
        let name = header::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(err) => panic!("no answer to the upgrade: {err}"),
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next message that is not a control frame, within 5 s.
async fn next(socket: &mut Socket) -> Message {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a message within 5 s")
            .expect("the socket is open")
            .unwrap();
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

async fn next_json(socket: &mut Socket) -> Value {
    match next(socket).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("not a text message: {other:?}"),
    }
}

/// The answer to a message and the event it caused, in whichever order they came.
async fn answer_and_event(socket: &mut Socket) -> (Value, Value) {
    let (first, second) = (next_json(socket).await, next_json(socket).await);
    if first["type"] == "result" {
        (first, second)
    } else {
        (second, first)
    }
}

/// Sends one HTTP/1.1 request and returns the status and body of its answer.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8(response).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Nothing arrived before the answer to a marker message: no event was pending.
async fn assert_no_event(socket: &mut Socket) {
    send(
        socket,
        json!({"type": "unsubscribe", "uri": "/nothing/", "ref": "marker"}),
    )
    .await;
    assert_eq!(
        next_json(socket).await,
        json!({"type": "unsubscribed", "uri": "/nothing/", "ref": "marker"})
    );
}

#[tokio::test]
async fn a_subscriber_sees_one_event_per_change_whichever_way_it_was_made() {
    let addr = serve(sockets(SocketConfig::default())).await;
    let mut socket = connect(addr, &[]).await.unwrap();

    send(
        &mut socket,
        json!({"type": "subscribe", "uri": "/items/", "ref": "s"}),
    )
    .await;
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "state", "uri": "/items/", "resource": [], "ref": "s"})
    );

    // A socket message.
    send(
        &mut socket,
        json!({"type": "create", "uri": "/items/", "attributes": {"name": "pen"}, "ref": "c"}),
    )
    .await;
    let (result, event) = answer_and_event(&mut socket).await;
    assert_eq!(
        (result["status"].as_u64(), result["ref"].as_str()),
        (Some(201), Some("c"))
    );
    assert_eq!(
        event,
        json!({"type": "create", "uri": "/items/", "resource": {"id": 1, "name": "pen"}, "location": "/items/1"})
    );

    // Plain REST requests: one event each.
    let (status, _) = http(addr, "PATCH", "/items/1", r#"{"name": "ink"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "patch", "uri": "/items/1", "patch": {"name": "ink"}})
    );
    let (status, body) = http(addr, "POST", "/items", r#"{"name": "cap"}"#).await;
    assert_eq!((status, body.as_str()), (201, r#"{"id":2,"name":"cap"}"#));
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "create", "uri": "/items/", "resource": {"id": 2, "name": "cap"}, "location": "/items/2"})
    );
    let (status, _) = http(addr, "DELETE", "/items/2", "").await;
    assert_eq!(status, 204);
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "delete", "uri": "/items/2"})
    );
    assert_no_event(&mut socket).await;

    // A refused REST mutation: none.
    let (status, _) = http(addr, "DELETE", "/items/2", "").await;
    assert_eq!(status, 404);
    assert_no_event(&mut socket).await;

    // An op of a batch: one, and none for its refused twin.
    let batch = r#"{"ops": [{"id": "a", "method": "DELETE", "url": "/items/1"}, {"method": "DELETE", "url": "/items/1", "depends_on": "a"}]}"#;
    let (status, body) = http(addr, "POST", "/batch", batch).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""status":204"#) && body.contains(r#""status":404"#),
        "{body}"
    );
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "delete", "uri": "/items/1"})
    );
    assert_no_event(&mut socket).await;
}

#[tokio::test]
async fn a_browser_origin_not_allowed_is_refused_with_403() {
    let config = SocketConfig::builder()
        .allow_origins(["https://app.example"])
        .build()
        .unwrap();
    let addr = serve(sockets(config)).await;
    assert_eq!(
        connect(addr, &[("origin", "https://evil.example")])
            .await
            .err(),
        Some(403)
    );
    assert!(
        connect(addr, &[("origin", "https://app.example")])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn middleware_that_refuses_a_get_refuses_the_upgrade_with_its_answer() {
    let addr = serve(sockets(SocketConfig::default())).await;
    assert_eq!(
        connect(addr, &[("authorization", "Bearer deny")])
            .await
            .err(),
        Some(401)
    );
    // The same identity reaches every message of an admitted socket.
    let mut socket = connect(addr, &[("authorization", "Bearer ok")])
        .await
        .unwrap();
    send(&mut socket, json!({"type": "subscribe", "uri": "/items/"})).await;
    assert_eq!(next_json(&mut socket).await["type"], "state");
}

#[tokio::test]
async fn a_message_over_the_limit_closes_the_socket_with_1009() {
    let config = SocketConfig::builder().max_message(1024).build().unwrap();
    let addr = serve(sockets(config)).await;
    let mut socket = connect(addr, &[]).await.unwrap();
    let padding = "x".repeat(2000);
    send(
        &mut socket,
        json!({"type": "subscribe", "uri": "/items/", "pad": padding}),
    )
    .await;
    match next(&mut socket).await {
        Message::Close(Some(close)) => assert_eq!(u16::from(close.code), 1009),
        other => panic!("expected a close, got {other:?}"),
    }
}

#[tokio::test]
async fn the_socket_path_without_an_upgrade_is_426_and_with_sockets_off_is_the_apps() {
    let addr = serve(sockets(SocketConfig::default())).await;
    let (status, _) = http(addr, "GET", "/socket", "").await;
    assert_eq!(status, 426);
    let addr = serve(Config::default()).await;
    let (status, _) = http(addr, "GET", "/socket", "").await;
    assert_eq!(status, 404, "the router's own answer");
    assert_eq!(connect(addr, &[]).await.err(), Some(404));
}
