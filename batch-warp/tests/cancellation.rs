//! A client that goes away takes its batch with it: the spawned batch is aborted and
//! no further op starts.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use batch_core::Config;
use common::serve;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use warp::Filter;

const OP_MS: u64 = 300;

#[tokio::test]
async fn disconnecting_mid_batch_starts_no_further_op() {
    let started = Arc::new(AtomicU64::new(0));
    let counter = started.clone();
    let slow = warp::path!("slow").then(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_millis(OP_MS)).await;
            "done"
        }
    });
    let addr = serve(batch_warp::with_batch(slow, Config::default())).await;

    let ops: Vec<_> = (0..5).map(|_| json!({"url": "/slow"})).collect();
    let body = serde_json::to_vec(&json!({"ops": ops, "sequential": true})).unwrap();
    let mut client = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /batch HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(&body).await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while started.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first op never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The first op has a whole OP_MS to go: time enough for the server to notice.
    drop(client);
    let at_disconnect = started.load(Ordering::SeqCst);
    assert_eq!(at_disconnect, 1);

    // Long enough for all five ops to have started had the batch kept running.
    tokio::time::sleep(Duration::from_millis(OP_MS * 6)).await;
    assert_eq!(
        started.load(Ordering::SeqCst),
        at_disconnect,
        "an op started after the client went away"
    );
}
