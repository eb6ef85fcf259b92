//! Two demo processes sharing change events through a real `redis-server`: a socket
//! on replica A sees what replica B changes, whichever way; with Redis stopped both
//! keep serving and A's own events still flow; with Redis back on the same port the
//! replicas link up again by themselves.
//!
//! Needs `redis-server` (on `PATH`, or `$REDIS_SERVER`): `scripts/test.sh` installs it.
//! Without it this test fails, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::{Duration, Instant};

use fixture::redis::RedisServer;
use fixture::socket_client::JsonSocket;
use serde_json::{Value, json};

use common::{Demo, WAIT};

/// How long a socket must stay quiet for the test to conclude nothing more comes.
const QUIET: Duration = Duration::from_millis(700);

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
        Demo::start("A", &["--redis", &redis.url()], &[]),
        Demo::start("B", &["--redis", &redis.url()], &[]),
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
