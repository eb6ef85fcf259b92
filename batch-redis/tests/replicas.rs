//! Replicas linked by the Redis hub, each a real fixture server with sockets, in
//! one process: events cross once each, local events flow without Redis, a
//! replica that started before Redis links up by itself once Redis is there, and a
//! client resumes on another replica than the one it left, with no gap and no
//! duplicate, even when Redis restarts.
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

/// The next `count` change events on `socket`, as sent (with their `seq`).
async fn events(socket: &mut JsonSocket, count: usize) -> Vec<Value> {
    let mut events = Vec::new();
    while events.len() < count {
        let message = socket.next(WAIT).await.unwrap();
        if message.get("seq").is_some() && message["type"] != "state" {
            events.push(message);
        } else {
            assert_eq!(message["type"], "result", "{message}");
        }
    }
    events
}

fn resume(uri: &str, since: &Value) -> Value {
    json!({"type": "subscribe", "uri": uri, "since": since, "ref": "resume"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_on_the_other_replica_without_gap_or_duplicate() {
    let (url, _redis) = redis();
    let (hub_a, hub_b) = (hub(&url, "resume"), hub(&url, "resume"));
    let (a, b) = (replica(&hub_a), replica(&hub_b));
    until("both reading", WAIT, || {
        hub_a.is_subscribed() && hub_b.is_subscribed()
    })
    .await;
    // A witness on B sees every event of the list, with the seq every replica gives it.
    let mut witness = subscribed(&b, &["/items/"]).await;
    let mut writer_a = JsonSocket::open(&a.url()).await.unwrap();
    let mut writer_b = JsonSocket::open(&b.url()).await.unwrap();

    let mut client = JsonSocket::open(&a.url()).await.unwrap();
    // Before any event of the run: a cursor every replica knows all the same.
    let first = client.subscribe("/items/", WAIT).await.unwrap();
    rename(&mut writer_a, 3, "seen").await;
    let seen = events(&mut client, 1).await.remove(0);
    assert_eq!(without_seq(seen.clone()), patch(3, "seen"));
    drop(client);

    // Made while the client is away, on both replicas.
    for n in 0..6 {
        let writer = if n % 2 == 0 {
            &mut writer_a
        } else {
            &mut writer_b
        };
        rename(writer, 3 + n % 2, &format!("away{n}")).await;
    }
    // More made while it resumes on B: each is replayed or live, once.
    let during = tokio::spawn(async move {
        for n in 0..20 {
            rename(&mut writer_a, 4, &format!("during{n}")).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        writer_a
    });
    let mut back = JsonSocket::open(&b.url()).await.unwrap();
    back.send(&resume("/items/", &seen["seq"])).await.unwrap();
    let _writer_a = during.await.unwrap();

    let all = events(&mut witness, 27).await;
    let after_seen: Vec<Value> = all
        .iter()
        .skip_while(|event| event["seq"] != seen["seq"])
        .skip(1)
        .cloned()
        .collect();
    assert_eq!(after_seen.len(), 26, "the witness saw {all:?}");
    let answer = back.next(WAIT).await.unwrap();
    assert_eq!(
        answer,
        json!({"type": "resumed", "uri": "/items/", "ref": "resume"})
    );
    let got: Vec<Value> = back.take(26, WAIT).await.unwrap();
    assert_eq!(got, after_seen, "replayed then live, in order, once each");
    assert!(back.drain(QUIET).await.unwrap().is_empty());

    let mut from_start = JsonSocket::open(&b.url()).await.unwrap();
    from_start
        .send(&resume("/items/", &first["seq"]))
        .await
        .unwrap();
    assert_eq!(from_start.next(WAIT).await.unwrap()["type"], "resumed");
    assert_eq!(from_start.take(27, WAIT).await.unwrap(), all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_during_a_resume_never_leaves_a_gap() {
    let mut redis = RedisServer::start().unwrap_or_else(|err| panic!("{err}"));
    let url = redis.url();
    let (hub_a, hub_b) = (hub(&url, "restart"), hub(&url, "restart"));
    let (a, b) = (replica(&hub_a), replica(&hub_b));
    until("both reading", WAIT, || {
        hub_a.is_subscribed() && hub_b.is_subscribed()
    })
    .await;
    let mut writer = JsonSocket::open(&a.url()).await.unwrap();
    let mut client = subscribed(&a, &["/items/"]).await;
    rename(&mut writer, 6, "seen").await;
    let seen = events(&mut client, 1).await.remove(0);
    drop(client);
    rename(&mut writer, 6, "missed").await;
    received(&mut writer, 2).await;

    // Redis goes down with the history: a resume waits for no one, and gets the
    // state with `reset`, never a `resumed` with events missing.
    redis.stop();
    let mut back = JsonSocket::open(&b.url()).await.unwrap();
    back.send(&resume("/items/", &seen["seq"])).await.unwrap();
    let answer = back.next(WAIT).await.unwrap();
    assert_eq!(
        (&answer["type"], &answer["reset"]),
        (&json!("state"), &json!(true)),
        "{answer}"
    );
    // Back, empty: the old cursor is not confused with the new run's.
    redis.restart().unwrap_or_else(|err| panic!("{err}"));
    until("both reading again", Duration::from_secs(20), || {
        hub_a.is_subscribed() && hub_b.is_subscribed()
    })
    .await;
    rename(&mut writer, 6, "after").await;
    let live = events(&mut back, 1).await.remove(0);
    assert_eq!(without_seq(live.clone()), patch(6, "after"));
    let mut again = JsonSocket::open(&a.url()).await.unwrap();
    again.send(&resume("/items/", &seen["seq"])).await.unwrap();
    let answer = again.next(WAIT).await.unwrap();
    assert_eq!(
        (&answer["type"], &answer["reset"]),
        (&json!("state"), &json!(true)),
        "{answer}"
    );

    // The new run's cursors resume, on either replica.
    drop(back);
    rename(&mut writer, 6, "later").await;
    let mut back = JsonSocket::open(&b.url()).await.unwrap();
    back.send(&resume("/items/", &live["seq"])).await.unwrap();
    assert_eq!(back.next(WAIT).await.unwrap()["type"], "resumed");
    assert_eq!(
        received(&mut back, 1).await,
        [patch(6, "later")],
        "the event made after the cursor, once"
    );
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
