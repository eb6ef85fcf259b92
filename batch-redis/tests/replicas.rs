//! Replicas linked by the Redis hub, each a real fixture server with sockets, in
//! one process: events cross once each, local events flow without Redis, and a
//! replica that started before Redis links up by itself once Redis is there.
//!
//! These tests need `redis-server` (`$REDIS_URL`, or the binary to start one): run
//! `scripts/test.sh`, which installs and starts it. Without it they fail, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use batch_core::{BatchEndpoint, Config, Event, Hub, SocketConfig};
use batch_redis::RedisHub;
use fixture::Server;
use fixture::redis::{RedisServer, url_from_env_or_start};
use fixture::socket_client::{JsonSocket, without_seq};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);
/// How long a socket must stay quiet for a test to conclude nothing more comes.
const QUIET: Duration = Duration::from_millis(500);

/// A fixture server whose changes go through `hub`.
fn replica(hub: &RedisHub) -> Server {
    let config = Config::builder()
        .sockets(SocketConfig::default())
        .build()
        .unwrap();
    let endpoint = BatchEndpoint::with_hub(config, hub.clone());
    fixture::tower::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), endpoint).unwrap()
}

/// A channel no other test uses, so tests can share one Redis.
fn channel(test: &str) -> String {
    format!("batch-redis-test:{}:{test}", std::process::id())
}

fn hub(url: &str, test: &str) -> RedisHub {
    RedisHub::builder(url)
        .channel(channel(test))
        .reconnect_delay(Duration::from_millis(50), Duration::from_millis(500))
        .build()
        .unwrap()
}

fn redis() -> (String, Option<RedisServer>) {
    url_from_env_or_start().unwrap_or_else(|err| panic!("{err}"))
}

async fn until(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn subscribed(server: &Server, uris: &[&str]) -> JsonSocket {
    let mut socket = JsonSocket::open(&server.url()).await.unwrap();
    for uri in uris {
        let state = socket.subscribe(uri, WAIT).await.unwrap();
        assert_eq!(state["type"], "state", "{state}");
    }
    socket
}

async fn rename(socket: &mut JsonSocket, id: u64, name: &str) {
    socket
        .send(&json!({"type": "patch", "uri": format!("/items/{id}"), "patch": {"name": name}, "ref": name}))
        .await
        .unwrap();
}

/// The next `count` messages, answers and events alike, and then nothing more.
async fn received(socket: &mut JsonSocket, count: usize) -> Vec<Value> {
    let messages: Vec<Value> = socket
        .take(count, WAIT)
        .await
        .unwrap()
        .into_iter()
        .map(without_seq)
        .collect();
    let more = socket.drain(QUIET).await.unwrap();
    assert!(more.is_empty(), "after {messages:?}, more: {more:?}");
    messages
}

fn patch(id: u64, name: &str) -> Value {
    json!({"type": "patch", "uri": format!("/items/{id}"), "patch": {"name": name}})
}

fn result(name: &str) -> (Option<&str>, Option<&str>, Option<u64>) {
    (Some("result"), Some(name), Some(200))
}

fn as_result(message: &Value) -> (Option<&str>, Option<&str>, Option<u64>) {
    (
        message["type"].as_str(),
        message["ref"].as_str(),
        message["status"].as_u64(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_replica_gets_every_event_once() {
    let (url, _redis) = redis();
    let (hub_a, hub_b) = (hub(&url, "once"), hub(&url, "once"));
    let (a, b) = (replica(&hub_a), replica(&hub_b));
    until("both subscribed", WAIT, || {
        hub_a.is_subscribed() && hub_b.is_subscribed()
    })
    .await;
    // Subscribed to the item and to its list: still one copy of each event.
    let mut on_a = subscribed(&a, &["/items/5", "/items/"]).await;
    let mut on_b = subscribed(&b, &["/items/5"]).await;

    rename(&mut on_b, 5, "from-b").await;
    let seen_b = received(&mut on_b, 2).await;
    assert!(seen_b.contains(&patch(5, "from-b")), "{seen_b:?}");
    assert!(seen_b.iter().any(|m| as_result(m) == result("from-b")));
    assert_eq!(received(&mut on_a, 1).await, [patch(5, "from-b")]);

    rename(&mut on_a, 5, "from-a").await;
    let seen_a = received(&mut on_a, 2).await;
    assert!(seen_a.contains(&patch(5, "from-a")), "{seen_a:?}");
    assert_eq!(received(&mut on_b, 1).await, [patch(5, "from-a")]);
    assert_eq!((hub_a.dropped(), hub_b.dropped()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_a_replica_serves_and_its_own_events_flow() {
    let nobody = free_port();
    let hub = RedisHub::builder(&format!("redis://127.0.0.1:{nobody}"))
        .channel(channel("down"))
        .queue(4)
        .build()
        .unwrap();
    let server = replica(&hub);
    let mut socket = subscribed(&server, &["/items/5"]).await;
    for n in 0..20 {
        rename(&mut socket, 5, &format!("n{n}")).await;
    }
    let seen = received(&mut socket, 40).await;
    for n in 0..20 {
        let name = format!("n{n}");
        assert!(seen.contains(&patch(5, &name)), "{name} in {seen:?}");
        assert!(seen.iter().any(|m| as_result(m) == result(&name)));
    }

    // A burst far beyond the queue: publish returns at once and drops what it
    // cannot send, counting every event exactly once.
    let event = Event::from_json(r#"{"type":"delete","uri":"/other/1"}"#.into()).unwrap();
    let started = Instant::now();
    for _ in 0..5000 {
        hub.publish(event.clone());
    }
    assert!(started.elapsed() < WAIT, "publish waited for Redis");
    until("every event counted as dropped", WAIT, || {
        hub.dropped() == 5020
    })
    .await;
    assert!(!hub.is_subscribed());
    // The socket still works.
    rename(&mut socket, 5, "still").await;
    received(&mut socket, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_started_before_redis_link_up_once_it_is_there() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let (hub_a, hub_b) = (hub(&url, "late"), hub(&url, "late"));
    let (a, b) = (replica(&hub_a), replica(&hub_b));
    let mut on_a = subscribed(&a, &["/items/"]).await;
    let mut on_b = subscribed(&b, &["/items/"]).await;
    rename(&mut on_b, 9, "unlinked").await;
    received(&mut on_b, 2).await;
    received(&mut on_a, 0).await;
    assert!(!hub_a.is_subscribed());

    let _redis = RedisServer::start_on(port).unwrap_or_else(|err| panic!("{err}"));
    until(
        "both subscribed once Redis is up",
        Duration::from_secs(20),
        || hub_a.is_subscribed() && hub_b.is_subscribed(),
    )
    .await;
    rename(&mut on_b, 9, "linked").await;
    assert_eq!(received(&mut on_a, 1).await, [patch(9, "linked")]);
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
