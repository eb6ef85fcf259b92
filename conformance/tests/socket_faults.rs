//! Faults only a real socket shows, on every adapter's fixture server: a client that
//! goes away mid-batch stops the batch, and an over-limit body sent chunked (no
//! `content-length` to refuse up front) is refused before the client has sent it all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use batch_core::{Config, ServiceExecutor};
use conformance::fixture::{self, Server, Store};
use serde_json::{Value, json};

type Start = fn(SocketAddr, Config) -> io::Result<Server>;

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The engine over the axum fixture with no framework adapter (`serve_executor`).
fn tower(_addr: SocketAddr, config: Config) -> io::Result<Server> {
    let app = fixture::axum::app(Arc::new(Store::default()));
    let executor = ServiceExecutor::new(app, config.max_response_body());
    conformance::serve_executor(executor, config)
}

/// Reads the response head and whatever of the body has arrived when the server
/// closes; `None` when nothing arrives within `wait`.
fn read_head(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(err) => panic!("reading the response: {err}"),
        }
    }
    Some(String::from_utf8_lossy(&raw).into_owned())
}

/// `GET path` on a fresh connection, answered as JSON.
fn get_json(addr: SocketAddr, path: &str) -> Value {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (_, body) = raw.split_once("\r\n\r\n").unwrap();
    // A chunked answer has its size lines around the JSON: take the JSON itself.
    let json = &body[body.find('{').unwrap()..=body.rfind('}').unwrap()];
    serde_json::from_str(json).unwrap()
}

/// Counts the ops that reached the fixture app since it was created: `/counter`
/// counts every request that passes the app's middleware, itself included.
struct OpCounter {
    addr: SocketAddr,
    first: u64,
    calls: u64,
}

impl OpCounter {
    fn new(addr: SocketAddr) -> Self {
        let first = get_json(addr, "/counter")["requests"].as_u64().unwrap();
        Self {
            addr,
            first,
            calls: 1,
        }
    }

    fn ops(&mut self) -> u64 {
        let now = get_json(self.addr, "/counter")["requests"]
            .as_u64()
            .unwrap();
        self.calls += 1;
        now - self.first - (self.calls - 1)
    }
}

const OP_MS: u64 = 400;

/// Five sequential ops of `OP_MS` each; the client leaves while the first runs. Had
/// the batch kept going, the other four would start within `5 * OP_MS`.
fn disconnecting_mid_batch_starts_no_further_op(start: Start) {
    let server = start(localhost(), Config::default()).unwrap();
    let addr = server.addr();
    let mut counter = OpCounter::new(addr);
    let ops: Vec<Value> = (0..5)
        .map(|_| json!({"url": format!("/slow?ms={OP_MS}")}))
        .collect();
    let body = serde_json::to_vec(&json!({"ops": ops, "sequential": true})).unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    write!(
        client,
        "POST /batch HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    client.write_all(&body).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while counter.ops() == 0 {
        assert!(Instant::now() < deadline, "the first op never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    client.shutdown(Shutdown::Both).unwrap();
    drop(client);
    let at_disconnect = counter.ops();
    assert_eq!(at_disconnect, 1, "the client left while the first op ran");

    std::thread::sleep(Duration::from_millis(OP_MS * 6));
    assert_eq!(
        counter.ops(),
        at_disconnect,
        "an op started after the client went away"
    );
}

const LIMIT: usize = 1024;

/// Sends four times the limit in chunks and never the last chunk: a server that
/// waited for the whole body before judging it would never answer.
fn a_chunked_body_over_the_limit_is_refused_before_it_ends(start: Start) {
    let config = Config::builder().max_body(LIMIT).build().unwrap();
    let server = start(localhost(), config).unwrap();
    let addr = server.addr();
    let mut client = TcpStream::connect(addr).unwrap();
    write!(
        client,
        "POST /batch HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let mut sent = 0;
    let prefix = br#"{"ops": [{"url": "/health"}], "pad": ""#;
    let mut body = prefix.to_vec();
    body.resize(LIMIT * 4, b'x');
    for chunk in body.chunks(256) {
        // The server may stop reading (and close) as soon as it has seen the limit.
        if client
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .and_then(|()| client.write_all(chunk))
            .and_then(|()| client.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
        sent += chunk.len();
    }
    assert!(sent > LIMIT, "only {sent} bytes were sent");
    let head = read_head(&mut client, Duration::from_secs(10)).unwrap_or_else(|| {
        panic!("no answer while the body was still open: the server waits for all of it")
    });
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("application/problem+json"), "{head}");
    drop(client);
    assert_eq!(
        get_json(addr, "/health"),
        json!({"ok": true}),
        "the server still answers"
    );
}

macro_rules! on_every_adapter {
    ($($adapter:ident: $start:expr;)*) => {$(
        mod $adapter {
            #[test]
            fn disconnecting_mid_batch_starts_no_further_op() {
                super::disconnecting_mid_batch_starts_no_further_op($start);
            }

            #[test]
            fn a_chunked_body_over_the_limit_is_refused_before_it_ends() {
                super::a_chunked_body_over_the_limit_is_refused_before_it_ends($start);
            }
        }
    )*};
}

on_every_adapter! {
    axum: conformance::fixture::axum::start;
    actix: conformance::fixture::actix::start;
    warp: conformance::fixture::warp::start;
    tower: super::tower;
}
