//! What a resume costs: from sending a `subscribe` with `since` to receiving the
//! 1,000th event the client missed, against a fresh subscribe's `state`, with the
//! local hub (history in the process) and with the Redis hub (history in Redis,
//! shared by the replicas).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use batch_core::{BatchEndpoint, SocketConfig};
use batch_redis::RedisHub;
use serde_json::{Value, json};

use crate::redis::Redis;
use crate::table::Row;
use crate::ws::{Socket, expect_type, subscribe, within};
use crate::{BenchError, Framework, Plan, Setup};

/// The events a resuming client missed.
const MISSED: usize = 1000;

/// The list resumed: every patch of its items is one of its events.
const LIST: &str = "/items/";

/// Changes sent at once while making the missed events: the watching socket reads
/// them as they come, well within its queue.
const CHUNK: usize = 100;

/// A hub on `redis`, on a stream of its own for `framework`'s server.
fn hub_on(redis: &Redis, framework: Framework) -> Result<RedisHub, BenchError> {
    RedisHub::builder(&redis.url())
        .channel(format!("bench:resume:{}", framework.name()))
        .runtime(redis.handle())
        .build()
        .map_err(|err| BenchError::Unexpected {
            what: "the Redis hub".into(),
            detail: err.to_string(),
        })
}

/// The rows for `framework`: a server with the local hub, and one with the Redis
/// hub when there is a Redis.
pub(crate) async fn all(
    framework: Framework,
    redis: Option<&Redis>,
    plan: Plan,
) -> Result<Vec<Row>, BenchError> {
    eprintln!("  resume");
    // The default socket settings: a replay of the whole history is delivered
    // whatever `max_queued`.
    let config = || -> Result<batch_core::Config, BenchError> {
        Ok(crate::config_builder(Setup::Sockets)?
            .sockets(SocketConfig::default())
            .build()?)
    };
    let local = serve(framework, BatchEndpoint::new(config()?))?;
    let mut rows = vec![measure(framework, local.addr(), "local hub", plan).await?];
    drop(local);
    if let Some(redis) = redis {
        let hub = hub_on(redis, framework)?;
        let server = serve(framework, BatchEndpoint::with_hub(config()?, hub.clone()))?;
        within("the Redis hub reading", async {
            while !hub.is_subscribed() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(())
        })
        .await?;
        rows.push(measure(framework, server.addr(), "Redis hub", plan).await?);
    }
    Ok(rows)
}

fn serve(framework: Framework, endpoint: BatchEndpoint) -> Result<fixture::Server, BenchError> {
    framework
        .start(SocketAddr::from(([127, 0, 0, 1], 0)), endpoint)
        .map_err(|err| BenchError::Io(format!("starting {}", framework.name()), err))
}

/// Makes [`MISSED`] events after a cursor, then times resumes from it and fresh
/// subscribes, alternately, each on a new socket.
async fn measure(
    framework: Framework,
    addr: SocketAddr,
    hub: &str,
    plan: Plan,
) -> Result<Row, BenchError> {
    let mut watcher = Socket::open(addr).await?;
    watcher.send(subscribe(LIST, "w")).await?;
    let state = within("subscribing", watcher.next()).await?;
    expect_type(&state, "state")?;
    let since = seq(&state)?;

    let mut writer = Socket::open(addr).await?;
    for chunk in 0..MISSED / CHUNK {
        for i in chunk * CHUNK..(chunk + 1) * CHUNK {
            let patch = json!({"type": "patch", "uri": format!("/items/{}", i % 20 + 1), "patch": {"name": format!("r{i}")}});
            writer.feed(patch.to_string()).await?;
        }
        writer.flush().await?;
        // Every change answered, and delivered: the history holds them all.
        within("making the changes", async {
            for _ in 0..CHUNK {
                expect_type(&writer.next().await?, "result")?;
                expect_type(&watcher.next().await?, "patch")?;
            }
            Ok(())
        })
        .await?;
    }

    let resume = json!({"type": "subscribe", "uri": LIST, "since": since, "ref": "r"}).to_string();
    let (mut resumes, mut fresh) = (Vec::new(), Vec::new());
    for round in 0..plan.warmup + plan.iterations {
        let mut socket = Socket::open(addr).await?;
        let started = Instant::now();
        socket.send(resume.clone()).await?;
        let took = within("resuming", async {
            expect_type(&socket.next().await?, "resumed")?;
            for _ in 0..MISSED {
                expect_type(&socket.next().await?, "patch")?;
            }
            Ok(started.elapsed())
        })
        .await?;
        let mut socket = Socket::open(addr).await?;
        let started = Instant::now();
        socket.send(subscribe(LIST, "s")).await?;
        let state = within("subscribing", socket.next()).await?;
        let baseline = started.elapsed();
        expect_type(&state, "state")?;
        if round >= plan.warmup {
            resumes.push(took);
            fresh.push(baseline);
        }
    }
    Ok(Row::faster(
        framework,
        &format!("resume: `subscribe` with `since` to the {MISSED}th missed event, {hub}"),
        crate::measure::median(resumes),
        "a fresh subscribe's `state`",
        crate::measure::median(fresh),
    ))
}

/// The `seq` of a state message.
fn seq(state: &[u8]) -> Result<Value, BenchError> {
    let message: Value = serde_json::from_slice(state).unwrap_or_default();
    match message.get("seq") {
        Some(seq @ Value::String(_)) => Ok(seq.clone()),
        _ => Err(BenchError::Unexpected {
            what: "a state (wanted its seq)".into(),
            detail: String::from_utf8_lossy(state).into_owned(),
        }),
    }
}
