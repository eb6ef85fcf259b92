//! What an `Idempotency-Key` adds to a batch: a keyed batch (a fresh key each time,
//! so it runs and its answer is stored) and a retry (answered from the store)
//! against the same batch without a key, with the in-memory store and with Redis.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use batch_redis::RedisStore;
use bytes::Bytes;
use fixture::{Framework, Server};
use http::Method;
use serde_json::json;

use crate::client::{Http1, Reply};
use crate::measure::{answered, batch_of, median, wake};
use crate::redis::Redis;
use crate::table::Row;
use crate::{BenchError, Plan, Setup};

/// Ops per measured batch: small GETs, so that what the key costs shows.
const OPS: usize = 10;

/// A fixture server for `framework` whose keys are kept in `redis`.
fn serve_on(redis: &Redis, framework: Framework) -> Result<Server, BenchError> {
    let store = RedisStore::builder(&redis.url())
        .runtime(redis.handle())
        .build()
        .map_err(|err| BenchError::Unexpected {
            what: "the Redis store".into(),
            detail: err.to_string(),
        })?;
    let config = crate::config_builder(Setup::Batches)?
        .idempotency_store(store)
        .build()?;
    framework
        .start(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .map_err(|err| BenchError::Io(format!("starting {}", framework.name()), err))
}

/// The rows for `framework`: its server at `addr` keeps keys in memory (the
/// default); with `redis`, a second server keeps them there.
pub(crate) async fn all(
    framework: Framework,
    addr: SocketAddr,
    redis: Option<&Redis>,
    plan: Plan,
) -> Result<Vec<Row>, BenchError> {
    eprintln!("  idempotency keys");
    let mut rows = store_rows(framework, addr, "memory store", plan).await?;
    if let Some(redis) = redis {
        let server = serve_on(redis, framework)?;
        rows.extend(store_rows(framework, server.addr(), "Redis store", plan).await?);
    }
    Ok(rows)
}

/// A keyed batch and a retry, each against the unkeyed batch, on one server.
async fn store_rows(
    framework: Framework,
    addr: SocketAddr,
    store: &str,
    plan: Plan,
) -> Result<Vec<Row>, BenchError> {
    let mut h1 = Http1::connect(addr).await?;
    let body = batch_of(OPS, |i| json!({ "url": format!("/items/{}", i + 1) }));
    let slug = store.replace(' ', "-");
    let retried = format!("retry-{slug}");
    send(&mut h1, &body, Some(&retried)).await?;
    let (mut plain, mut keyed, mut retry) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..plan.warmup + plan.iterations {
        let fresh = format!("{slug}-{round}");
        let mut times = [Duration::ZERO; 3];
        for (time, key) in times.iter_mut().zip([None, Some(&fresh), Some(&retried)]) {
            wake(&mut h1).await?;
            let started = Instant::now();
            send(&mut h1, &body, key.map(String::as_str)).await?;
            *time = started.elapsed();
        }
        if round >= plan.warmup {
            plain.push(times[0]);
            keyed.push(times[1]);
            retry.push(times[2]);
        }
    }
    h1.close().await;
    let (plain, keyed, retry) = (median(plain), median(keyed), median(retry));
    let baseline = format!("1 batch of {OPS} GETs, no key");
    Ok(vec![
        Row::faster(
            framework,
            &format!("1 batch of {OPS} GETs with a new Idempotency-Key, {store}"),
            keyed,
            &baseline,
            plain,
        ),
        Row::faster(
            framework,
            &format!("its retry, answered from the {store}"),
            retry,
            &baseline,
            plain,
        ),
    ])
}

/// Sends the batch with `key`, if any, and checks that it ran or was replayed.
async fn send(h1: &mut Http1, body: &Bytes, key: Option<&str>) -> Result<Reply, BenchError> {
    let headers: Vec<(&str, &str)> = key
        .map(|key| ("idempotency-key", key))
        .into_iter()
        .collect();
    let reply = h1
        .send_with(
            Method::POST,
            crate::measure::BATCH_PATH,
            Some(body.clone()),
            &headers,
        )
        .await?;
    answered(reply, || format!("a batch with key {key:?}"))
}
