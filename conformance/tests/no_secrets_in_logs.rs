//! Every log line at TRACE, from the engine, the adapters and the frameworks, while
//! batches carry a secret in every place a client puts one: the secret never shows.
//!
//! The subscriber is global and this file is its own test process, so it sees
//! everything every server thread logs (and `log` records, which actix writes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use batch_core::{Config, ServiceExecutor};
use bytes::Bytes;
use conformance::client::Client;
use conformance::fixture::{self, Server, Store};
use serde_json::json;
use tracing_subscriber::util::SubscriberInitExt as _;

const CANARY: &str = "canary-7f3a9c2e";

/// A writer appending to one shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends batches that succeed, fail per op and are refused, with the canary in the
/// outer `authorization` and `cookie`, in op headers, in op query strings and bodies.
async fn exercise(client: &Client) {
    let outer = |content_type: &str| {
        vec![
            ("authorization".to_owned(), format!("Bearer {CANARY}")),
            ("cookie".to_owned(), format!("session={CANARY}")),
            ("content-type".to_owned(), content_type.to_owned()),
        ]
    };
    let send = |body: serde_json::Value| Bytes::from(serde_json::to_vec(&body).unwrap());
    let answered = send(json!({"ops": [
        {"url": "/whoami"},
        {"url": format!("/echo?token={CANARY}"), "headers": {"x-api-key": CANARY}},
        {"method": "POST", "url": "/items", "body": {"name": CANARY, "password": CANARY}},
        {"url": format!("/cookie?name=s&value={CANARY}")},
        {"url": format!("/status/500?token={CANARY}")},
        {"url": format!("/nope?token={CANARY}")},
        {"url": "/panic", "headers": {"x-api-key": CANARY}},
        {"url": format!("/slow?ms=2000&token={CANARY}"), "timeout_ms": 50},
        {"url": format!("/health?token={CANARY}"), "depends_on": "4"},
    ]}));
    let response = client
        .send("POST", "/batch", &outer("application/json"), answered)
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert!(
        String::from_utf8_lossy(&response.body).contains(CANARY),
        "the canary reached the handlers"
    );

    let refused = [
        json!({"ops": [{"url": "/echo", "headers": {"authorization": format!("Bearer {CANARY}")}}]}),
        json!({"ops": [{"url": "/echo", "headers": {"cookie": format!("s={CANARY}")}}]}),
        json!({"ops": [{"url": format!("/echo?token={CANARY}%zz")}]}),
        json!({"ops": [{"url": format!("//{CANARY}.example/x")}]}),
        json!({"ops": [{"url": "/echo", "headers": {"x-api-key": format!("{CANARY}\r\nx: y")}}]}),
        json!({"ops": [{"url": "/echo", "headers": format!("authorization: Bearer {CANARY}")}]}),
        json!({"ops": [{"url": "/echo", "body": {"password": CANARY}, "timeout_ms": CANARY}]}),
        json!({"ops": [{"url": format!("/batch?token={CANARY}")}]}),
    ];
    for body in refused {
        let response = client
            .send("POST", "/batch", &outer("application/json"), send(body))
            .await
            .unwrap();
        assert!(response.status.is_client_error(), "{}", response.status);
    }
    let graph = send(json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/echo?token={CANARY}"), "headers": {"x-api-key": CANARY}},
        {"id": "2", "method": "GET", "url": "/whoami", "headers": {"authorization": CANARY}},
    ]}));
    let response = client
        .send("POST", "/batch", &outer("application/json"), graph)
        .await
        .unwrap();
    assert_eq!(
        response.status, 422,
        "graph: an op may not set authorization"
    );
    let part = |headers: &str| {
        format!(
            "--b\r\ncontent-type: application/http\r\n\r\nGET /echo?token={CANARY} HTTP/1.1\r\n{headers}\r\n\r\n"
        )
    };
    let multipart = |headers: &str| Bytes::from(format!("{}--b--\r\n", part(headers)));
    let content_type = "multipart/mixed; boundary=b";
    let response = client
        .send(
            "POST",
            "/batch",
            &outer(content_type),
            multipart(&format!("x-api-key: {CANARY}")),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200, "multipart");
    let response = client
        .send(
            "POST",
            "/batch",
            &outer(content_type),
            multipart(&format!("authorization: Bearer {CANARY}")),
        )
        .await
        .unwrap();
    assert!(
        response.status.is_client_error(),
        "multipart: {}",
        response.status
    );
    let text = Bytes::from(format!(r#"{{"ops": [{{"url": "/echo?token={CANARY}"}}]}}"#));
    let response = client
        .send("POST", "/batch", &outer("text/plain"), text.clone())
        .await
        .unwrap();
    assert_eq!(response.status, 415);
    let truncated = text.slice(..text.len() - 3);
    let response = client
        .send("POST", "/batch", &outer("application/json"), truncated)
        .await
        .unwrap();
    assert_eq!(response.status, 400);
}

fn tower(_addr: SocketAddr, config: Config) -> io::Result<Server> {
    let app = fixture::axum::app(Arc::new(Store::default()));
    let executor = ServiceExecutor::new(app, config.max_response_body());
    conformance::serve_executor(executor, config)
}

#[test]
fn no_secret_reaches_the_logs_at_trace_on_any_adapter() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .try_init()
        .unwrap();

    type Start = fn(SocketAddr, Config) -> io::Result<Server>;
    let adapters: [(&str, Start); 4] = [
        ("axum", fixture::axum::start),
        ("actix", fixture::actix::start),
        ("warp", fixture::warp::start),
        ("tower", tower),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (name, start) in adapters {
        let server = start(SocketAddr::from(([127, 0, 0, 1], 0)), Config::default()).unwrap();
        runtime.block_on(exercise(&Client::new(&server.url())));
        drop(server);
        let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
        let line = logs.lines().find(|line| line.contains(CANARY));
        assert_eq!(line, None, "{name} logged the canary");
    }

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    // The capture works: the engine's own lines, at every level, are in it.
    for expected in [
        "batch answered",
        "batch refused",
        "operation handler panicked",
        " TRACE ",
    ] {
        assert!(
            logs.contains(expected),
            "no {expected:?} line in the capture"
        );
    }
}
