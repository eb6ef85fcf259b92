//! Sockets on axum's own WebSocket support, over real connections: an upgrade goes
//! through the router's middleware, and the socket path is the router's own when
//! sockets are off. The protocol, events, origins and limits are the conformance
//! suite's `socket` scenarios, run on every adapter.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use batch_core::{Config, SocketConfig};
use fixture::socket_client::JsonSocket;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WITHIN: Duration = Duration::from_secs(5);

/// `GET /items` (always `[]`), behind a middleware that answers
/// `authorization: Bearer deny` with 401.
fn app() -> Router {
    Router::new()
        .route("/items", get(|| async { Json(json!([])) }))
        .layer(middleware::from_fn(deny))
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

fn sockets(sockets: SocketConfig) -> Config {
    Config::builder().sockets(sockets).build().unwrap()
}

async fn serve(config: Config) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = batch_axum::with_batch(app(), config);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The status of a plain `GET path` over HTTP/1.1.
async fn get_status(base: &str, path: &str) -> u16 {
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8(response).unwrap()[9..12].parse().unwrap()
}

#[tokio::test]
async fn middleware_that_refuses_a_get_refuses_the_upgrade_with_its_answer() {
    let base = serve(sockets(SocketConfig::default())).await;
    let denied = JsonSocket::connect(&base, &[("authorization", "Bearer deny")]).await;
    assert_eq!(denied.unwrap_err().refused_with(), Some(401));
    let mut socket = JsonSocket::connect(&base, &[("authorization", "Bearer ok")])
        .await
        .unwrap();
    let state = socket.subscribe("/items/", WITHIN).await.unwrap();
    assert_eq!(state["type"], "state", "{state}");
}

#[tokio::test]
async fn the_socket_path_without_an_upgrade_is_426_and_with_sockets_off_is_the_apps() {
    let base = serve(sockets(SocketConfig::default())).await;
    assert_eq!(get_status(&base, "/socket").await, 426);
    let base = serve(Config::default()).await;
    assert_eq!(
        get_status(&base, "/socket").await,
        404,
        "the router's own answer"
    );
    assert_eq!(
        JsonSocket::open(&base).await.unwrap_err().refused_with(),
        Some(404)
    );
}
