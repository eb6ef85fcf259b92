//! Two demo processes sharing change events through a real `redis-server`: a socket
//! on replica A sees what replica B changes, whichever way; with Redis stopped both
//! keep serving and A's own events still flow; with Redis back on the same port the
//! replicas link up again by themselves.
//!
//! Needs `redis-server` (on `PATH`, or `$REDIS_SERVER`): `scripts/test.sh` installs it.
//! Without it this test fails, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use conformance::client::Client;
use fixture::redis::RedisServer;
use fixture::socket_client::JsonSocket;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
/// How long a socket must stay quiet for the test to conclude nothing more comes.
const QUIET: Duration = Duration::from_millis(700);

/// A running demo process; killed when dropped, its log printed if the test failed.
struct Demo {
    name: &'static str,
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
    http: Client,
}

impl Demo {
    fn start(name: &'static str, redis: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_demo"))
            .args(["--addr", "127.0.0.1:0", "--redis", redis])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the demo binary runs");
        // The demo logs to stdout (tracing's default) and reports errors on stderr:
        // both go to the log; the first line naming the URL gives it.
        let log = Arc::new(Mutex::new(String::new()));
        let (url_tx, url_rx) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = BufReader::new(child.stderr.take().unwrap());
        for output in [
            Box::new(stdout) as Box<dyn BufRead + Send>,
            Box::new(stderr),
        ] {
            let (log, url_tx) = (log.clone(), url_tx.clone());
            std::thread::spawn(move || {
                for line in output.lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        let url = rest.split_whitespace().next().unwrap_or_default();
                        let _ = url_tx.send(url.to_owned());
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let url = url_rx.recv_timeout(WAIT).unwrap_or_else(|_| {
            panic!("demo {name} printed no URL; log:\n{}", log.lock().unwrap())
        });
        let http = Client::new(&url);
        Self {
            name,
            child,
            url,
            log,
            http,
        }
    }

    fn logged(&self, text: &str) -> bool {
        self.log.lock().unwrap().contains(text)
    }

    async fn until_logged(&self, text: &str, within: Duration) {
        let start = Instant::now();
        while !self.logged(text) {
            assert!(
                start.elapsed() < within,
                "demo {} did not log {text:?} within {within:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn socket(&self, subscriptions: &[&str]) -> JsonSocket {
        let mut socket = JsonSocket::open(&self.url).await.unwrap();
        for uri in subscriptions {
            let state = socket.subscribe(uri, WAIT).await.unwrap();
            assert_eq!(state["type"], "state", "{state}");
        }
        socket
    }

    /// A plain JSON request; the status and the parsed body.
    async fn request(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let headers = [("content-type".to_owned(), "application/json".to_owned())];
        let body = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        let exchange = self.http.send(method, path, &headers, body).await.unwrap();
        let parsed = serde_json::from_slice(&exchange.body).unwrap_or(Value::Null);
        (exchange.status.as_u16(), parsed)
    }

    /// A native batch of `ops`; the status of each op.
    async fn batch(&self, ops: Value) -> Vec<u64> {
        let (status, body) = self.request("POST", "/batch", json!({"ops": ops})).await;
        assert_eq!(status, 200, "{body}");
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|result| result["status"].as_u64().unwrap())
            .collect()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- demo {} log ---\n{}",
                self.name,
                self.log.lock().unwrap()
            );
        }
    }
}

type Summary = (String, String, Option<String>);

/// `type` and `uri` of an event, with the name it carries, if any.
fn summary(event: &Value) -> Summary {
    let name = event["resource"]["name"]
        .as_str()
        .or(event["patch"]["name"].as_str());
    (
        event["type"].as_str().unwrap_or_default().to_owned(),
        event["uri"].as_str().unwrap_or_default().to_owned(),
        name.map(str::to_owned),
    )
}

fn expect(kind: &str, uri: &str, name: Option<&str>) -> Summary {
    (kind.to_owned(), uri.to_owned(), name.map(str::to_owned))
}

/// What arrives until the socket is quiet.
async fn events(socket: &mut JsonSocket) -> Vec<Summary> {
    socket
        .drain(QUIET)
        .await
        .unwrap()
        .iter()
        .map(summary)
        .collect()
}

/// Exactly `expected`, in order, each within a generous bound, and then nothing more.
async fn exactly(socket: &mut JsonSocket, expected: &[Summary]) {
    let got: Vec<Summary> = socket
        .take(expected.len(), WAIT)
        .await
        .unwrap_or_else(|err| panic!("{err} while waiting for {expected:?}"))
        .iter()
        .map(summary)
        .collect();
    assert_eq!(got, expected);
    let more = events(socket).await;
    assert!(more.is_empty(), "after {expected:?}, more: {more:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_events_through_redis_and_survive_its_outage() {
    let started = Instant::now();
    let mut redis = RedisServer::start().unwrap_or_else(|err| panic!("{err}"));
    let (a, b) = (
        Demo::start("A", &redis.url()),
        Demo::start("B", &redis.url()),
    );
    a.until_logged("Redis hub: subscribed", WAIT).await;
    b.until_logged("Redis hub: subscribed", WAIT).await;
    let linked = started.elapsed();

    // Redis up: a socket on A sees B's changes, once each, from every source. It is
    // subscribed to item 5 and to the list: one copy of item 5's change still.
    let mut on_a = a.socket(&["/items/", "/items/5"]).await;
    let (status, _) = b
        .request("POST", "/items", json!({"name": "by-rest"}))
        .await;
    assert_eq!(status, 201);
    let ops = json!([{"method": "PATCH", "url": "/items/5", "body": {"name": "by-batch"}}]);
    assert_eq!(b.batch(ops).await, [200]);
    let mut on_b = b.socket(&[]).await;
    on_b.send(&json!({"type": "delete", "uri": "/items/6", "ref": "d"}))
        .await
        .unwrap();
    assert_eq!(on_b.next(WAIT).await.unwrap()["status"], 204);
    exactly(
        &mut on_a,
        &[
            expect("create", "/items/", Some("by-rest")),
            expect("patch", "/items/5", Some("by-batch")),
            expect("delete", "/items/6", None),
        ],
    )
    .await;
    let shared = started.elapsed();

    // Redis down: both replicas serve batches and sockets; A's own events flow.
    redis.stop();
    a.until_logged("Redis hub: not subscribed", WAIT).await;
    b.until_logged("Redis hub: not subscribed", WAIT).await;
    let ops = json!([
        {"method": "PATCH", "url": "/items/5", "body": {"name": "a-batch"}},
        {"url": "/items/5"}
    ]);
    assert_eq!(a.batch(ops.clone()).await, [200, 200]);
    assert_eq!(b.batch(ops).await, [200, 200]);
    let (status, _) = a
        .request("PATCH", "/items/5", json!({"name": "a-rest"}))
        .await;
    assert_eq!(status, 200);
    on_b.send(&json!({"type": "patch", "uri": "/items/7", "patch": {"name": "b-socket"}}))
        .await
        .unwrap();
    assert_eq!(on_b.next(WAIT).await.unwrap()["status"], 200);
    let mut new_on_a = a.socket(&["/items/7"]).await;
    new_on_a
        .send(&json!({"type": "patch", "uri": "/items/7", "patch": {"name": "a-socket"}}))
        .await
        .unwrap();
    // A's subscriber got A's three changes, none of B's (lost while Redis is down).
    exactly(
        &mut on_a,
        &[
            expect("patch", "/items/5", Some("a-batch")),
            expect("patch", "/items/5", Some("a-rest")),
            expect("patch", "/items/7", Some("a-socket")),
        ],
    )
    .await;
    let answer_and_event = new_on_a.take(2, WAIT).await.unwrap();
    assert!(
        answer_and_event
            .iter()
            .any(|m| summary(m) == expect("patch", "/items/7", Some("a-socket"))),
        "{answer_and_event:?}"
    );
    b.until_logged("Redis hub: cannot publish", WAIT).await;
    let outage = started.elapsed();

    // Redis back on the same port: events cross again, with no restart.
    redis.restart().unwrap_or_else(|err| panic!("{err}"));
    let back = Instant::now();
    let mut attempts = 0;
    'resumed: loop {
        assert!(
            back.elapsed() < Duration::from_secs(60),
            "events did not cross again within 60 s of Redis coming back"
        );
        attempts += 1;
        let name = format!("again-{attempts}");
        let (status, _) = b.request("POST", "/items", json!({"name": name})).await;
        assert_eq!(status, 201);
        for event in events(&mut on_a).await {
            assert_eq!(event.0, "create", "{event:?}");
            if event.2.is_some_and(|seen| seen.starts_with("again-")) {
                break 'resumed;
            }
        }
    }
    let resumed_after = back.elapsed();
    a.until_logged("Redis hub: subscribed again", WAIT).await;
    let (status, _) = b
        .request("PATCH", "/items/5", json!({"name": "resumed"}))
        .await;
    assert_eq!(status, 200);
    exactly(&mut on_a, &[expect("patch", "/items/5", Some("resumed"))]).await;
    println!(
        "replicas linked after {linked:?}; events shared by {shared:?}; outage checked by {outage:?}; \
         events crossed again {resumed_after:?} after Redis restarted ({attempts} attempts); total {:?}",
        started.elapsed()
    );
}
