//! The socket endpoint's limits and safety properties, over real WebSockets on
//! `BatchLayer` over hyper: each test shows one of them holding for a client that
//! pushes against it (small limits keep them fast).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use batch_core::{BatchEndpoint, Config, SocketConfig, SocketConfigBuilder};
use common::app::{self, Items};
use futures::{SinkExt, StreamExt};
use http::HeaderMap;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

type Socket = WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// The store behind an endpoint with `sockets`, served on 127.0.0.1.
struct Server {
    endpoint: BatchEndpoint,
    addr: SocketAddr,
    items: Items,
}

async fn serve(sockets: SocketConfigBuilder) -> Server {
    let config = Config::builder()
        .sockets(sockets.build().unwrap())
        .build()
        .unwrap();
    let endpoint = BatchEndpoint::new(config);
    let (addr, items) = app::serve(endpoint.clone()).await;
    Server {
        endpoint,
        addr,
        items,
    }
}

/// Waits up to 5 s for `done` to hold.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "not within 5 s: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), future)
        .await
        .unwrap_or_else(|_| panic!("not within 5 s: {what}"))
}

// --- tungstenite clients ---------------------------------------------------------

/// Asks for a socket, with `origin` if given: the socket, or the refusal's status
/// and headers.
async fn upgrade(addr: SocketAddr, origin: Option<&str>) -> Result<Socket, (u16, HeaderMap)> {
    let mut request = format!("ws://{addr}/socket").into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            Err((response.status().as_u16(), response.headers().clone()))
        }
        Err(other) => panic!("the upgrade failed: {other}"),
    }
}

async fn open(addr: SocketAddr) -> Socket {
    upgrade(addr, None).await.map_err(|(s, _)| s).unwrap()
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next JSON message (pings and pongs skipped), within 5 s.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = within("a message", socket.next())
            .await
            .expect("the socket is open")
            .unwrap();
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame, within 5 s, and returns its code; every
/// message before it must be a text message.
async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        match within("a close frame", socket.next()).await {
            Some(Ok(Message::Close(Some(close)))) => return close.code.into(),
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Subscribes to `uri` and returns the answer.
async fn subscribe(socket: &mut Socket, uri: &str, reference: &str) -> Value {
    send(
        socket,
        json!({"type": "subscribe", "uri": uri, "ref": reference}),
    )
    .await;
    next(socket).await
}

fn kind_status_ref(message: &Value) -> (&str, Option<u64>, &str) {
    (
        message["type"].as_str().unwrap(),
        message["status"].as_u64(),
        message["ref"].as_str().unwrap_or_default(),
    )
}

// --- a raw client, for what tungstenite does on its own (pongs, closes) -----------

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

/// A WebSocket client written by hand: it sends exactly the frames it is told to
/// and answers nothing by itself.
struct Raw {
    stream: TcpStream,
    read: Vec<u8>,
}

impl Raw {
    /// Opens a socket over a connection with a small receive window, so that a
    /// server writing to a client that does not read soon has to wait.
    async fn open(addr: SocketAddr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let request = format!(
            "GET /socket HTTP/1.1\r\nhost: {addr}\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
             sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut read = Vec::new();
        let end = loop {
            if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0; 1024];
            let n = within("the upgrade's answer", stream.read(&mut chunk))
                .await
                .unwrap();
            assert!(n > 0, "the server closed during the upgrade");
            read.extend_from_slice(&chunk[..n]);
        };
        assert!(
            read.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&read)
        );
        read.drain(..end);
        Self { stream, read }
    }

    /// A final, masked frame as a client sends it.
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        frame
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.stream
            .write_all(&Self::frame(opcode, payload))
            .await
            .unwrap();
    }

    /// The next frame from the server (opcode, payload); `Ok(None)` when the server
    /// closed the connection cleanly, an error when it was reset.
    async fn next(&mut self) -> std::io::Result<Option<(u8, Vec<u8>)>> {
        loop {
            if let Some((header, length)) = self.header() {
                if self.read.len() >= header + length {
                    let opcode = self.read[0] & 0x0f;
                    let payload = self.read[header..header + length].to_vec();
                    self.read.drain(..header + length);
                    return Ok(Some((opcode, payload)));
                }
            }
            let mut chunk = [0; 16 * 1024];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                assert!(self.read.is_empty(), "the server closed mid-frame");
                return Ok(None);
            }
            self.read.extend_from_slice(&chunk[..n]);
        }
    }

    /// The length of the buffered frame's header and of its payload, once known.
    fn header(&self) -> Option<(usize, usize)> {
        let read = &self.read;
        if read.len() < 2 {
            return None;
        }
        assert_eq!(read[1] & 0x80, 0, "a server's frames are not masked");
        match read[1] & 0x7f {
            126 if read.len() >= 4 => Some((4, u16::from_be_bytes([read[2], read[3]]).into())),
            127 if read.len() >= 10 => {
                let length = u64::from_be_bytes(read[2..10].try_into().unwrap());
                Some((10, usize::try_from(length).unwrap()))
            }
            126 | 127 => None,
            n => Some((2, n.into())),
        }
    }
}

fn code_of(close_payload: &[u8]) -> u16 {
    u16::from_be_bytes([close_payload[0], close_payload[1]])
}

// --- plain HTTP ------------------------------------------------------------------

/// Sends one HTTP/1.1 request with a JSON body and returns the status.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response[9..12]).parse().unwrap()
}

async fn create_item(addr: SocketAddr, name: &str) {
    let body = json!({ "name": name }).to_string();
    assert_eq!(http(addr, "POST", "/items", &body).await, 201);
}

// --- the properties -----------------------------------------------------------------

#[tokio::test]
async fn browser_upgrades_need_an_allowed_origin_and_others_need_none() {
    let listed = serve(SocketConfig::builder().allow_origins(["http://app.example"])).await;
    let addr = listed.addr;
    for origin in ["http://evil.example", &format!("http://{addr}")] {
        let (status, _) = upgrade(addr, Some(origin)).await.err().unwrap();
        assert_eq!(status, 403, "{origin}");
    }
    assert_eq!(
        listed.endpoint.open_sockets(),
        0,
        "a refusal holds no place"
    );
    for origin in [Some("http://app.example"), None] {
        let mut socket = upgrade(addr, origin).await.map_err(|(s, _)| s).unwrap();
        let state = subscribe(&mut socket, "/items/", "s").await;
        assert_eq!(kind_status_ref(&state), ("state", None, "s"), "{origin:?}");
    }

    // By default, only a page of the server's own host and port.
    let own = serve(SocketConfig::builder()).await;
    let addr = own.addr;
    let other_port = format!("http://127.0.0.1:{}", addr.port().wrapping_add(1));
    for origin in ["http://evil.example", other_port.as_str(), "null"] {
        let (status, _) = upgrade(addr, Some(origin)).await.err().unwrap();
        assert_eq!(status, 403, "{origin}");
    }
    for origin in [Some(format!("http://{addr}")), None] {
        let mut socket = upgrade(addr, origin.as_deref())
            .await
            .map_err(|(s, _)| s)
            .unwrap();
        let state = subscribe(&mut socket, "/items/", "s").await;
        assert_eq!(kind_status_ref(&state), ("state", None, "s"), "{origin:?}");
    }
}

/// A subscribe message of exactly `length` bytes.
fn padded_subscribe(length: usize) -> String {
    let bare = json!({"type": "subscribe", "uri": "/items/", "ref": "p", "pad": ""}).to_string();
    let message =
        json!({"type": "subscribe", "uri": "/items/", "ref": "p", "pad": "x".repeat(length - bare.len())})
            .to_string();
    assert_eq!(message.len(), length);
    message
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_the_socket_with_1009() {
    let server = serve(SocketConfig::builder().max_message(1024)).await;
    let mut socket = open(server.addr).await;
    socket
        .send(Message::text(padded_subscribe(1024)))
        .await
        .unwrap();
    assert_eq!(
        kind_status_ref(&next(&mut socket).await),
        ("state", None, "p"),
        "a message of the limit's size is taken"
    );
    socket
        .send(Message::text(padded_subscribe(1025)))
        .await
        .unwrap();
    assert_eq!(close_code(&mut socket).await, 1009);

    let mut socket = open(server.addr).await;
    socket
        .send(Message::binary(vec![b'x'; 1025]))
        .await
        .unwrap();
    assert_eq!(
        close_code(&mut socket).await,
        1009,
        "a binary message too large is closed on too, not answered"
    );
}

#[tokio::test]
async fn nothing_sent_after_a_message_too_large_runs() {
    let server = serve(SocketConfig::builder().max_message(1024)).await;
    // Both frames arrive together, so the second is read before the close is sent.
    let create = json!({"type": "create", "uri": "/items/", "attributes": {"name": "late"}});
    let mut frames = Raw::frame(TEXT, padded_subscribe(1100).as_bytes());
    frames.extend(Raw::frame(TEXT, create.to_string().as_bytes()));
    for _ in 0..30 {
        let mut raw = Raw::open(server.addr).await;
        raw.stream.write_all(&frames).await.unwrap();
        let (opcode, payload) = within("the close", raw.next()).await.unwrap().unwrap();
        assert_eq!((opcode, code_of(&payload)), (CLOSE, 1009));
    }
    eventually("every socket closed", || {
        server.endpoint.open_sockets() == 0
    })
    .await;
    let mut socket = open(server.addr).await;
    let items = subscribe(&mut socket, "/items/", "s").await;
    assert_eq!(
        items["resource"],
        json!([]),
        "the create after the too large message never ran"
    );
}

#[tokio::test]
async fn subscriptions_beyond_the_limit_are_refused_with_429_and_not_made() {
    let server = serve(SocketConfig::builder().max_subscriptions(2)).await;
    let addr = server.addr;
    create_item(addr, "a").await;
    create_item(addr, "b").await;
    let mut socket = open(addr).await;
    for (uri, reference) in [("/items/1", "a"), ("/items/2", "b")] {
        let state = subscribe(&mut socket, uri, reference).await;
        assert_eq!(kind_status_ref(&state), ("state", None, reference));
    }
    let refused = subscribe(&mut socket, "/items/", "c").await;
    assert_eq!(kind_status_ref(&refused), ("error", Some(429), "c"));
    assert_eq!(server.endpoint.subscriptions(), 2);

    // The same path again, with or without a query: its state again, no new place.
    for (uri, reference) in [("/items/1?again=1", "d"), ("/items/1", "e")] {
        let state = subscribe(&mut socket, uri, reference).await;
        assert_eq!(kind_status_ref(&state), ("state", None, reference));
        assert_eq!(state["uri"], uri);
        assert_eq!(state["resource"], json!({"id": 1, "name": "a"}));
    }
    assert_eq!(server.endpoint.subscriptions(), 2);

    // The refused subscription gets no event: the create in /items/ is not sent, the
    // patch of /items/2 that follows it is.
    create_item(addr, "c").await;
    assert_eq!(
        http(addr, "PATCH", "/items/2", r#"{"name": "b2"}"#).await,
        200
    );
    let event = next(&mut socket).await;
    assert_eq!(
        [&event["type"], &event["uri"], &event["patch"]],
        [&json!("patch"), &json!("/items/2"), &json!({"name": "b2"})],
    );

    // An unsubscribe frees a place.
    send(
        &mut socket,
        json!({"type": "unsubscribe", "uri": "/items/1", "ref": "u"}),
    )
    .await;
    assert_eq!(
        kind_status_ref(&next(&mut socket).await),
        ("unsubscribed", None, "u")
    );
    let state = subscribe(&mut socket, "/items/", "f").await;
    assert_eq!(kind_status_ref(&state), ("state", None, "f"));
    assert_eq!(server.endpoint.subscriptions(), 2);
}

#[tokio::test]
async fn a_subscription_whose_state_comes_last_receives_changes() {
    let server = serve(SocketConfig::builder()).await;
    create_item(server.addr, "a").await;
    let mut socket = open(server.addr).await;
    // The unsubscribe is answered while the subscribe's GET still runs: the state,
    // answered last, is the socket's last word on the subscription.
    send(
        &mut socket,
        json!({"type": "subscribe", "uri": "/items/1?delay=300", "ref": "s"}),
    )
    .await;
    send(
        &mut socket,
        json!({"type": "unsubscribe", "uri": "/items/1", "ref": "u"}),
    )
    .await;
    assert_eq!(
        kind_status_ref(&next(&mut socket).await),
        ("unsubscribed", None, "u")
    );
    assert_eq!(
        kind_status_ref(&next(&mut socket).await),
        ("state", None, "s")
    );
    assert_eq!(server.endpoint.subscriptions(), 1);
    assert_eq!(
        http(server.addr, "PATCH", "/items/1", r#"{"name": "b"}"#).await,
        200
    );
    let event = next(&mut socket).await;
    assert_eq!(
        [&event["type"], &event["uri"], &event["patch"]],
        [&json!("patch"), &json!("/items/1"), &json!({"name": "b"})],
    );
}

/// The number in an item's name `"{n}:…"`, as the slow reader test names them.
fn sequence(event: &Value) -> usize {
    let name = event["patch"]["name"].as_str().unwrap();
    name.split(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_too_far_behind_is_closed_with_1013_while_others_get_every_event() {
    let server = serve(
        SocketConfig::builder()
            .max_queued(16)
            .slow_reader_grace(Duration::from_secs(30)),
    )
    .await;
    let addr = server.addr;
    create_item(addr, "0").await;

    // A reader with a small receive window, which stops reading after its state.
    let stream = tokio::net::TcpSocket::new_v4().unwrap();
    stream.set_recv_buffer_size(4096).unwrap();
    let stream = stream.connect(addr).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (mut slow, _) = tokio_tungstenite::client_async(format!("ws://{addr}/socket"), stream)
        .await
        .unwrap();
    assert_eq!(subscribe(&mut slow, "/items/1", "s").await["type"], "state");

    // A reader that keeps up, collecting the numbers of the changes it is sent.
    let mut fast = open(addr).await;
    assert_eq!(subscribe(&mut fast, "/items/1", "f").await["type"], "state");
    let collector = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let event = next(&mut fast).await;
            if event["patch"]["name"] == "end" {
                return (seen, fast);
            }
            seen.push(sequence(&event));
        }
    });
    assert_eq!(server.endpoint.subscriptions(), 2);

    // Changes of 32 KiB each, until the slow reader's queue overflows.
    let pad = "x".repeat(32 * 1024);
    let mut sent = 0;
    while sent < 600 && server.endpoint.subscriptions() == 2 {
        let body = json!({ "name": format!("{sent}:{pad}") }).to_string();
        assert_eq!(http(addr, "PATCH", "/items/1", &body).await, 200);
        sent += 1;
    }
    assert_eq!(
        server.endpoint.subscriptions(),
        1,
        "after {sent} changes, the slow reader's subscription is dropped"
    );
    for _ in 0..3 {
        let body = json!({ "name": format!("{sent}:{pad}") }).to_string();
        assert_eq!(http(addr, "PATCH", "/items/1", &body).await, 200);
        sent += 1;
    }
    assert_eq!(
        http(addr, "PATCH", "/items/1", r#"{"name": "end"}"#).await,
        200
    );
    let (seen, _fast) = within("the fast reader's events", collector).await.unwrap();
    assert_eq!(
        seen,
        (0..sent).collect::<Vec<_>>(),
        "the reader that keeps up got every change, in order"
    );

    // The slow reader reads at last: the changes already on their way, in order and
    // from the first, then 1013.
    let mut delivered = 0;
    loop {
        match within("the slow reader's next frame", slow.next()).await {
            Some(Ok(Message::Text(text))) => {
                let event: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(sequence(&event), delivered, "in order, none missing");
                delivered += 1;
            }
            Some(Ok(Message::Close(Some(close)))) => {
                assert_eq!(u16::from(close.code), 1013);
                break;
            }
            other => panic!("expected a change or the close, got {other:?}"),
        }
    }
    assert!(
        delivered < sent,
        "{delivered} of {sent} changes were on their way"
    );
    // Its close answered, the socket is gone.
    while within("the end of the slow socket", slow.next())
        .await
        .is_some_and(|m| m.is_ok())
    {}
    eventually("the slow socket is closed", || {
        server.endpoint.open_sockets() == 1
    })
    .await;
}

#[tokio::test]
async fn an_upgrade_beyond_the_socket_cap_is_answered_503_until_one_closes() {
    let server = serve(SocketConfig::builder().max_sockets(2)).await;
    let mut first = open(server.addr).await;
    let _second = open(server.addr).await;
    let (status, headers) = upgrade(server.addr, None).await.err().unwrap();
    assert_eq!(status, 503);
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    assert_eq!(server.endpoint.open_sockets(), 2);

    first.close(None).await.unwrap();
    while within("the end of the closed socket", first.next())
        .await
        .is_some()
    {}
    eventually("a place is free", || server.endpoint.open_sockets() == 1).await;
    let mut third = open(server.addr).await;
    assert_eq!(subscribe(&mut third, "/items/", "t").await["type"], "state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_runs_at_most_max_in_flight_messages_at_once_and_answers_every_one() {
    let server = serve(SocketConfig::builder().max_in_flight(2)).await;
    let mut socket = open(server.addr).await;
    let started = Instant::now();
    for i in 0..6 {
        let batch = json!({"ops": [{"url": "/slow?ms=200"}]});
        send(
            &mut socket,
            json!({"type": "batch", "batch": batch, "ref": format!("b{i}")}),
        )
        .await;
    }
    let mut answered = Vec::new();
    for _ in 0..6 {
        let answer = next(&mut socket).await;
        assert_eq!(answer["type"], "results", "{answer}");
        assert_eq!(answer["results"][0]["status"], 200, "{answer}");
        answered.push(answer["ref"].as_str().unwrap().to_owned());
    }
    answered.sort();
    assert_eq!(answered, ["b0", "b1", "b2", "b3", "b4", "b5"]);
    assert_eq!(server.items.slow().peak(), 2, "two ran at once, never more");
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "six messages of 200 ms, two at a time, took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_messages_and_upgrades_count_against_the_servers_cap_on_ops_in_flight() {
    let config = Config::builder()
        .max_in_flight(1)
        .sockets(SocketConfig::default())
        .build()
        .unwrap();
    let endpoint = BatchEndpoint::new(config);
    let (addr, items) = app::serve(endpoint).await;
    let mut busy = open(addr).await;
    let mut other = open(addr).await;
    let batch = json!({"ops": [{"url": "/slow?ms=1000"}]});
    send(
        &mut busy,
        json!({"type": "batch", "batch": batch, "ref": "slow"}),
    )
    .await;
    eventually("the slow op runs", || items.slow().running() == 1).await;

    let refused = subscribe(&mut other, "/items/", "s").await;
    assert_eq!(kind_status_ref(&refused), ("error", Some(503), "s"));
    send(
        &mut other,
        json!({"type": "create", "uri": "/items/", "attributes": {"name": "shed"}, "ref": "c"}),
    )
    .await;
    assert_eq!(
        kind_status_ref(&next(&mut other).await),
        ("error", Some(503), "c")
    );
    let (status, headers) = upgrade(addr, None).await.err().unwrap();
    assert_eq!(status, 503, "the upgrade's probe is an op too");
    assert!(headers.contains_key("retry-after"), "{headers:?}");

    assert_eq!(
        kind_status_ref(&next(&mut busy).await),
        ("results", None, "slow")
    );
    let state = subscribe(&mut other, "/items/", "again").await;
    assert_eq!(
        kind_status_ref(&state),
        ("state", None, "again"),
        "a place is free again"
    );
    assert_eq!(
        state["resource"],
        json!([]),
        "the refused create made nothing"
    );
}

#[tokio::test]
async fn a_client_answering_no_ping_is_closed_and_one_answering_stays() {
    let server = serve(
        SocketConfig::builder()
            .ping_interval(Duration::from_millis(100))
            .idle_timeout(Duration::from_millis(400))
            .close_grace(Duration::from_millis(500)),
    )
    .await;
    // A client that reads (and so answers pings) all along.
    let mut answering = open(server.addr).await;
    let reader = tokio::spawn(async move {
        let reading = async {
            while let Some(message) = answering.next().await {
                message.unwrap();
            }
        };
        let stayed = tokio::time::timeout(Duration::from_millis(1500), reading)
            .await
            .is_err();
        (stayed, answering)
    });
    let mut silent = Raw::open(server.addr).await;
    let opened = Instant::now();

    // The silent client reads pings and answers none.
    let mut pings = 0;
    let code = within("the silent client's close", async {
        loop {
            match silent.next().await.unwrap() {
                Some((PING, _)) => pings += 1,
                Some((CLOSE, payload)) => return code_of(&payload),
                other => panic!("expected a ping or the close, got {other:?}"),
            }
        }
    })
    .await;
    assert_eq!(code, 1001);
    assert!(pings >= 1, "pinged before being closed");
    assert!(
        opened.elapsed() >= Duration::from_millis(300),
        "closed only once idle for long: {:?}",
        opened.elapsed()
    );
    assert_eq!(
        within("the end of the connection", silent.next())
            .await
            .unwrap(),
        None,
        "no close frame from the client: the server ends it after the grace"
    );

    // The client that reads is still there, well past the idle timeout.
    let (stayed, mut answering) = reader.await.unwrap();
    assert!(stayed, "the client answering pings was not closed");
    assert_eq!(
        subscribe(&mut answering, "/items/", "a").await["type"],
        "state"
    );
    assert_eq!(server.endpoint.open_sockets(), 1);
}

#[tokio::test]
async fn a_client_waiting_on_its_own_slow_messages_is_not_idle() {
    let server = serve(
        SocketConfig::builder()
            .max_in_flight(1)
            .ping_interval(Duration::from_millis(100))
            .idle_timeout(Duration::from_millis(400)),
    )
    .await;
    let mut socket = open(server.addr).await;
    // The second message waits, unread, behind the first: so do the client's pongs.
    for (reference, ms) in [("long", 1200), ("short", 0)] {
        let batch = json!({"ops": [{"url": format!("/slow?ms={ms}")}]});
        send(
            &mut socket,
            json!({"type": "batch", "batch": batch, "ref": reference}),
        )
        .await;
    }
    for reference in ["long", "short"] {
        let answer = next(&mut socket).await;
        assert_eq!(kind_status_ref(&answer), ("results", None, reference));
    }
}

#[tokio::test]
async fn a_client_that_reads_nothing_is_closed_even_while_writes_to_it_wait() {
    let server = serve(
        SocketConfig::builder()
            .ping_interval(Duration::from_millis(100))
            .idle_timeout(Duration::from_millis(400))
            .close_grace(Duration::from_millis(300)),
    )
    .await;
    let big = "x".repeat(64 * 1024);
    create_item(server.addr, &big).await;
    // States of 64 KiB asked for again and again until the connection is full:
    // the server's writes wait, while the queue stays far below its limit.
    let mut raw = Raw::open(server.addr).await;
    let subscribe = json!({"type": "subscribe", "uri": "/items/1"}).to_string();
    for _ in 0..150 {
        raw.send(TEXT, subscribe.as_bytes()).await;
    }
    eventually("the client that stopped reading is closed", || {
        server.endpoint.open_sockets() == 0
    })
    .await;
    assert_eq!(server.endpoint.subscriptions(), 0);
}

#[tokio::test]
async fn clients_that_leave_free_their_subscriptions_sockets_and_running_ops() {
    let server = serve(SocketConfig::builder().close_grace(Duration::from_secs(1))).await;
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let baseline = tasks();
    create_item(server.addr, "a").await;

    let mut vanishing = open(server.addr).await;
    for uri in ["/items/1", "/items/"] {
        assert_eq!(subscribe(&mut vanishing, uri, "v").await["type"], "state");
    }
    let mut closing = open(server.addr).await;
    assert_eq!(
        subscribe(&mut closing, "/items/1", "c").await["type"],
        "state"
    );
    // A client that leaves while a subscribe and a batch still wait on the app.
    let mut busy = Raw::open(server.addr).await;
    let pending = json!({"type": "subscribe", "uri": "/slow?ms=10000"});
    let batch = json!({"type": "batch", "batch": {"ops": [{"url": "/slow?ms=10000"}]}});
    busy.send(TEXT, pending.to_string().as_bytes()).await;
    busy.send(TEXT, batch.to_string().as_bytes()).await;
    eventually("both ops run", || server.items.slow().running() == 2).await;
    assert_eq!(server.endpoint.subscriptions(), 4);
    assert_eq!(server.endpoint.open_sockets(), 3);

    // Gone without a close frame.
    drop(vanishing);
    eventually("the vanished client's subscriptions end", || {
        server.endpoint.subscriptions() == 2 && server.endpoint.open_sockets() == 2
    })
    .await;

    // Gone with the closing handshake.
    closing.close(None).await.unwrap();
    while within("the end of the closed socket", closing.next())
        .await
        .is_some()
    {}
    eventually("the closed client's subscription ends", || {
        server.endpoint.subscriptions() == 1 && server.endpoint.open_sockets() == 1
    })
    .await;

    // Gone mid-op: its ops are cancelled, long before they would have ended.
    drop(busy);
    eventually("the busy client's ops stop", || {
        server.items.slow().running() == 0
    })
    .await;
    assert_eq!(server.endpoint.subscriptions(), 0);
    assert_eq!(server.endpoint.open_sockets(), 0);
    eventually("no task is left but the server's", || tasks() == baseline).await;
}

#[tokio::test]
async fn after_closing_the_server_reads_until_the_clients_close_frame() {
    let server = serve(
        SocketConfig::builder()
            .max_message(1024)
            .close_grace(Duration::from_secs(10)),
    )
    .await;
    let mut raw = Raw::open(server.addr).await;
    // A message too large, and more behind it than the server reads at once: had
    // the server stopped reading, these unread bytes would reset the connection.
    let mut bytes = Raw::frame(TEXT, &[b'x'; 2048]);
    for _ in 0..300 {
        bytes.extend(Raw::frame(TEXT, &[b'y'; 1000]));
    }
    let _ = within("the client's writes", raw.stream.write_all(&bytes)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (opcode, payload) = within("the close frame", raw.next())
        .await
        .expect("the close frame arrives, not a reset")
        .expect("a close frame before the end");
    assert_eq!((opcode, code_of(&payload)), (CLOSE, 1009));

    // The connection was not reset: the client's close goes out, and its answer is
    // the end of the connection, without waiting for the grace.
    raw.stream
        .write_all(&Raw::frame(CLOSE, &1000u16.to_be_bytes()))
        .await
        .expect("the connection is still up, not reset");
    let answered = Instant::now();
    assert!(matches!(within("the end", raw.next()).await, Ok(None)));
    assert!(answered.elapsed() < Duration::from_secs(5));
    eventually("the socket is closed", || {
        server.endpoint.open_sockets() == 0
    })
    .await;
}
