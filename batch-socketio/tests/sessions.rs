//! Socket.IO clients' sessions over real connections: what a client holds and when
//! it lets go, spoken in raw Engine.IO v4 / Socket.IO v5 packets (WebSocket and
//! polling transports) so every packet the server sends is seen.
//!
//! The events themselves, with the real python-socketio client, are tested by
//! `clients/socketio-python`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use batch_core::{BatchEndpoint, Config, SocketConfig};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A generous bound for anything the server sends.
const WAIT: Duration = Duration::from_secs(5);

type Items = Arc<Mutex<Vec<Value>>>;

/// `/items`: a list to subscribe to and create in.
fn routes() -> Router {
    let items = Items::default();
    Router::new()
        .route(
            "/items",
            get(|State(items): State<Items>| async move {
                Json(Value::from(items.lock().unwrap().clone()))
            })
            .post(
                |State(items): State<Items>, Json(item): Json<Value>| async move {
                    items.lock().unwrap().push(item.clone());
                    (StatusCode::CREATED, Json(item))
                },
            ),
        )
        .with_state(items)
}

/// Serves the routes with the batch endpoint and Socket.IO, as an application does.
async fn serve(sockets: SocketConfig) -> (SocketAddr, BatchEndpoint) {
    let endpoint = BatchEndpoint::new(Config::builder().sockets(sockets).build().unwrap());
    let routes = routes();
    let app = batch_axum::with_batch(routes.clone(), endpoint.clone())
        .layer(batch_socketio::layer(endpoint.clone(), routes));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, endpoint)
}

/// Waits, within [`WAIT`], for `done` to hold.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {WAIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `42[event, data]`, with an ack id when one is wanted.
fn event(ack: Option<u32>, name: &str, data: Value) -> String {
    let ack = ack.map(|id| id.to_string()).unwrap_or_default();
    format!("42{ack}{}", json!([name, data]))
}

/// A client on the WebSocket transport.
struct Socket(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

impl Socket {
    /// Opens the Engine.IO connection and asks to join the default namespace;
    /// returns the server's answer to that (`40…` connected, `44…` refused).
    async fn connect(addr: SocketAddr) -> (Self, String) {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut socket = Self(socket);
        assert!(
            socket.next().await.starts_with('0'),
            "the Engine.IO open packet"
        );
        socket.send("40").await;
        let answer = socket.next().await;
        (socket, answer)
    }

    async fn send(&mut self, packet: &str) {
        self.0.send(Message::text(packet)).await.unwrap();
    }

    /// The next packet, pings answered on the way.
    async fn next(&mut self) -> String {
        loop {
            let message = tokio::time::timeout(WAIT, self.0.next())
                .await
                .expect("a packet in time")
                .expect("the connection is open")
                .unwrap();
            match message {
                Message::Text(text) if text.as_str() == "2" => self.send("3").await,
                Message::Text(text) => return text.as_str().to_owned(),
                _ => {}
            }
        }
    }
}

/// A client on the polling transport: it reads only when it polls.
struct Polling {
    http: Client<HttpConnector, Full<Bytes>>,
    url: String,
}

impl Polling {
    async fn open(addr: SocketAddr) -> Self {
        let http = Client::builder(TokioExecutor::new()).build_http();
        let mut polling = Self {
            http,
            url: format!("http://{addr}/socket.io/?EIO=4&transport=polling"),
        };
        let open = polling.poll().await;
        let sid = serde_json::from_str::<Value>(&open[0][1..]).unwrap()["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        polling.url = format!("{}&sid={sid}", polling.url);
        polling
    }

    /// One long poll: the packets the server had for the client.
    async fn poll(&mut self) -> Vec<String> {
        let request = http::Request::get(&self.url).body(Full::default()).unwrap();
        let response = tokio::time::timeout(WAIT, self.http.request(request))
            .await
            .expect("a poll answered in time")
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        body.split('\u{1e}').map(str::to_owned).collect()
    }

    async fn send(&mut self, packet: &str) {
        let request = http::Request::post(&self.url)
            .body(Full::new(Bytes::from(packet.to_owned())))
            .unwrap();
        let response = self.http.request(request).await.unwrap();
        assert_eq!(response.status(), 200);
    }

    /// Polls until a packet that `wanted` picks comes; returns every packet read.
    async fn poll_until(&mut self, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let mut read = Vec::new();
        while !read.iter().any(|packet: &String| wanted(packet)) {
            read.extend(self.poll().await);
        }
        read
    }
}

#[tokio::test]
async fn a_client_that_goes_frees_its_place_and_its_subscriptions() {
    let (addr, endpoint) = serve(SocketConfig::default()).await;
    let (mut socket, connected) = Socket::connect(addr).await;
    assert!(connected.starts_with("40{"), "{connected}");
    socket
        .send(&event(Some(1), "subscribe", json!("/items/")))
        .await;
    assert!(socket.next().await.starts_with(r#"42["state""#));
    assert!(socket.next().await.starts_with(r#"431[{"type":"state""#));
    assert_eq!((endpoint.open_sockets(), endpoint.subscriptions()), (1, 1));

    drop(socket);
    eventually("the session ends with the connection", || {
        (endpoint.open_sockets(), endpoint.subscriptions()) == (0, 0)
    })
    .await;
}

#[tokio::test]
async fn a_client_beyond_the_socket_cap_is_refused_until_a_place_frees() {
    let sockets = SocketConfig::builder().max_sockets(1).build().unwrap();
    let (addr, endpoint) = serve(sockets).await;
    let (first, connected) = Socket::connect(addr).await;
    assert!(connected.starts_with("40{"), "{connected}");

    let (_, refused) = Socket::connect(addr).await;
    let refusal: Value = serde_json::from_str(refused.strip_prefix("44").unwrap()).unwrap();
    assert!(
        refusal["message"].as_str().unwrap().starts_with("503"),
        "connect_error with the HTTP refusal: {refused}"
    );
    assert_eq!(endpoint.open_sockets(), 1);

    drop(first);
    eventually("the place frees", || endpoint.open_sockets() == 0).await;
    let (_, connected) = Socket::connect(addr).await;
    assert!(connected.starts_with("40{"), "{connected}");
}

#[tokio::test]
async fn a_reader_that_falls_behind_is_disconnected_while_others_get_every_event() {
    let sockets = SocketConfig::builder().max_queued(4).build().unwrap();
    let (addr, endpoint) = serve(sockets).await;

    let mut slow = Polling::open(addr).await;
    slow.send("40").await;
    slow.poll_until(|packet| packet.starts_with("40{")).await;
    slow.send(&event(Some(1), "subscribe", json!("/items/")))
        .await;
    slow.poll_until(|packet| packet.starts_with("431[")).await;

    let (mut keeping_up, _) = Socket::connect(addr).await;
    keeping_up
        .send(&event(Some(1), "subscribe", json!("/items/")))
        .await;
    keeping_up.next().await;
    keeping_up.next().await;
    assert_eq!(endpoint.subscriptions(), 2);

    // Twenty creations while the slow client does not poll: more than its queue holds.
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    for n in 0..20 {
        let request = http::Request::post(format!("http://{addr}/items"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(json!({ "n": n }).to_string())))
            .unwrap();
        let response = http.request(request).await.unwrap();
        assert_eq!(response.status(), 201);
        response.into_body().collect().await.unwrap();
    }
    for n in 0..20 {
        let packet = keeping_up.next().await;
        let created: Value = serde_json::from_str(packet.strip_prefix("42").unwrap()).unwrap();
        assert_eq!(created[0], "create");
        assert_eq!(
            created[1]["resource"],
            json!({ "n": n }),
            "every event, in order"
        );
    }

    // The slow client reads what was queued, then is told to go rather than
    // quietly missing events.
    let read = slow.poll_until(|packet| packet == "41").await;
    let events = read
        .iter()
        .filter(|packet| packet.starts_with("42"))
        .count();
    assert!(events < 20, "{read:?}");
    eventually("the slow client's subscription ends", || {
        (endpoint.open_sockets(), endpoint.subscriptions()) == (1, 1)
    })
    .await;
}
