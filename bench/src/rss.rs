//! The server's memory: its peak while it answers batches of large ops, against the
//! raw payload, and what each idle socket holds, against the idle server. The server
//! runs in a child process, so its memory is its own, not the client's.

use http::Method;
use serde_json::json;

use crate::child::Served;
use crate::client::Http1;
use crate::measure::{batch, batch_of};
use crate::table::{Row, Value};
use crate::ws::{Socket, subscribe_all};
use crate::{BenchError, Framework, Plan, Setup};

/// Ops per batch, and each op's body.
const OPS: usize = 50;
const OP_BODY: usize = 100 * 1024;

/// Starts `framework`'s server in a child, warms it up, then sends batches of
/// [`OPS`] POSTs to `/echo` with [`OP_BODY`] bytes each (every op's response is as
/// large) and compares the server's RSS high-water mark to its idle RSS.
pub(crate) fn measure(
    framework: Framework,
    runtime: &tokio::runtime::Runtime,
    plan: Plan,
) -> Result<Row, BenchError> {
    let (served, addr) = Served::start(framework, Setup::Batches, plan.server_cpus)?;
    let text = "x".repeat(OP_BODY - 2); // a JSON string of OP_BODY bytes, quotes included
    let large = batch_of(
        OPS,
        |_| json!({ "method": "POST", "url": "/echo", "body": text }),
    );
    let small = batch_of(OPS, |i| json!({ "url": format!("/items/{}", i + 1) }));
    let (idle, peak) = runtime.block_on(async {
        let mut h1 = Http1::connect(addr).await?;
        for _ in 0..3 {
            batch(&mut h1, &small, OPS).await?;
            h1.send(Method::GET, "/health", None).await?;
        }
        let idle = served.memory("VmRSS")?;
        for _ in 0..plan.rss_batches {
            batch(&mut h1, &large, OPS).await?;
        }
        let peak = served.memory("VmHWM")?;
        h1.close().await;
        Ok::<_, BenchError>((idle, peak))
    })?;
    drop(served);
    let payload = (OPS * OP_BODY) as u64;
    let growth = peak.saturating_sub(idle);
    Ok(Row::new(
        framework,
        &format!(
            "server RSS growth, batches of {OPS} × 100 KiB echoed (idle {} → peak {})",
            Value::Bytes(idle),
            Value::Bytes(peak)
        ),
        Value::Bytes(growth),
        "raw op payload",
        Value::Bytes(payload),
        growth as f64 / payload as f64,
        "× the payload",
    ))
}

/// Starts `framework`'s server with sockets in a child, warms it up (batches, a
/// socket opened, subscribed and closed), reads its idle RSS, then opens each of
/// `plan.idle_sockets` sockets (cumulatively), each subscribed to one item and
/// answered, and reads its RSS again: the growth per socket, against the idle server.
pub(crate) fn idle_sockets(
    framework: Framework,
    runtime: &tokio::runtime::Runtime,
    plan: Plan,
) -> Result<Vec<Row>, BenchError> {
    let (served, addr) = Served::start(framework, Setup::Sockets, plan.server_cpus)?;
    let small = batch_of(OPS, |i| json!({ "url": format!("/items/{}", i + 1) }));
    runtime.block_on(async {
        let mut h1 = Http1::connect(addr).await?;
        for _ in 0..3 {
            batch(&mut h1, &small, OPS).await?;
            let mut warm = vec![Socket::open(addr).await?];
            subscribe_all(&mut warm, "/items/1").await?;
        }
        h1.send(Method::GET, "/health", None).await?;
        let idle = served.memory("VmRSS")?;
        let mut sockets = Vec::new();
        let mut rows = Vec::new();
        for &n in plan.idle_sockets {
            let mut opened = Vec::new();
            Socket::open_more(&mut opened, addr, n.saturating_sub(sockets.len())).await?;
            // A hundred sockets to an item: the hub holds up to a hundred keys.
            for (i, chunk) in opened.chunks_mut(100).enumerate() {
                subscribe_all(chunk, &format!("/items/{}", i % 100 + 1)).await?;
            }
            sockets.append(&mut opened);
            let with = served.memory("VmRSS")?;
            let growth = with.saturating_sub(idle);
            let per_socket = growth / n.max(1) as u64;
            rows.push(Row::new(
                framework,
                &format!(
                    "server RSS growth, {n} idle sockets each subscribed to 1 item \
                     (idle {} → {}): {} per socket",
                    Value::Bytes(idle),
                    Value::Bytes(with),
                    Value::Bytes(per_socket),
                ),
                Value::Bytes(growth),
                "idle server RSS",
                Value::Bytes(idle),
                growth as f64 / idle as f64,
                "× the idle server",
            ));
        }
        h1.close().await;
        Ok(rows)
    })
}
