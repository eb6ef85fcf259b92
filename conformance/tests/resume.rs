//! A resume after as many missed events as the history holds, on every adapter,
//! with the default socket configuration: a real WebSocket client gets `resumed`,
//! every missed event once and in order, then live ones (the replay is bounded
//! apart from the live-message queue, `max_queued`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use batch_core::{Config, SocketConfig};
use bytes::Bytes;
use conformance::client::Client;
use fixture::Framework;
use fixture::socket_client::JsonSocket;
use serde_json::{Value, json};

/// The default per-URI history: every one of these is replayed.
const MISSED: usize = 1000;

/// How long a read waits, at most: generous, it bounds a wait.
const WAIT: Duration = Duration::from_secs(10);

/// Creates items `first..first + count` by batches of the default largest size.
async fn create(client: &Client, names: std::ops::Range<usize>) {
    let names: Vec<usize> = names.collect();
    for chunk in names.chunks(50) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"method": "POST", "url": "/items", "body": {"name": format!("m{i}")}}))
            .collect();
        let exchange = client
            .send(
                "POST",
                "/batch",
                &[("content-type".to_owned(), "application/json".to_owned())],
                Bytes::from(json!({ "ops": ops }).to_string()),
            )
            .await
            .unwrap();
        assert_eq!(exchange.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_replays_a_full_history_with_the_default_queue() {
    for framework in Framework::ALL {
        let name = framework.name();
        let config = Config::builder()
            .sockets(SocketConfig::default())
            .build()
            .unwrap();
        let server = framework
            .start("127.0.0.1:0".parse().unwrap(), config)
            .unwrap();
        let client = Client::new(&server.url());
        let mut socket = JsonSocket::open(&server.url()).await.unwrap();
        let state = socket.subscribe("/items/", WAIT).await.unwrap();
        let since = state["seq"].clone();
        assert!(since.is_string(), "{name}: {state}");
        drop(socket);

        create(&client, 0..MISSED).await;

        let mut socket = JsonSocket::open(&server.url()).await.unwrap();
        socket
            .send(&json!({"type": "subscribe", "uri": "/items/", "since": since, "ref": "r"}))
            .await
            .unwrap();
        let resumed = socket.next(WAIT).await.unwrap();
        assert_eq!(
            resumed,
            json!({"type": "resumed", "uri": "/items/", "ref": "r"}),
            "{name}"
        );
        for i in 0..MISSED {
            let event = socket
                .next(WAIT)
                .await
                .unwrap_or_else(|err| panic!("{name}: missed event {i}: {err}"));
            assert_eq!(event["type"], "create", "{name}: {event}");
            assert_eq!(
                event["resource"]["name"],
                json!(format!("m{i}")),
                "{name}: in order, each once"
            );
        }
        create(&client, MISSED..MISSED + 1).await;
        let live = socket.next(WAIT).await.unwrap();
        assert_eq!(
            (&live["type"], &live["resource"]["name"]),
            (&json!("create"), &json!(format!("m{MISSED}"))),
            "{name}: live events follow the replay"
        );
    }
}
