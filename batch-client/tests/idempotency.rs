//! Idempotency keys from the client, against the fixture servers over real HTTP:
//! each batch carries a fresh key, a batch whose answer is lost is sent again with
//! the same key and runs once, and without keys only harmless batches are resent.
//!
//! Answers are lost by a small HTTP proxy in front of the server, which forwards
//! every request and, for the first batch only, closes the client's connection
//! instead of relaying the answer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use batch_client::{Client, Error, Operation, RetryPolicy};
use batch_core::{Config, Problem};
use bytes::Bytes;
use common::{batch_url, counter, start};
use fixture::{Framework, Server};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// What becomes of the first batch (`POST`) the proxy forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// Nothing: every answer is relayed.
    Never,
    /// The server answers it in full; the client's connection is closed instead
    /// of relaying the answer.
    AfterAnswer,
    /// The client's connection is closed while the server still runs it.
    WhileRunning,
}

/// One batch the proxy forwarded: its key, and the answer the client got (`None`:
/// the connection was closed instead).
#[derive(Debug, Clone)]
struct Seen {
    key: Option<String>,
    answer: Option<Answer>,
}

#[derive(Debug, Clone)]
struct Answer {
    status: StatusCode,
    replayed: bool,
    code: Option<String>,
}

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    loss: Loss,
    posts: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

impl Proxy {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn record(&self, key: Option<String>, answer: Option<Answer>) {
        self.seen.lock().unwrap().push(Seen { key, answer });
    }
}

/// Serves a proxy to `server` on a free port; the proxy and the batch URL through it.
async fn proxy(server: &Server, loss: Loss) -> (Arc<Proxy>, String) {
    let proxy = Arc::new(Proxy {
        upstream: server.url(),
        http: reqwest::Client::new(),
        loss,
        posts: AtomicUsize::new(0),
        seen: Mutex::new(Vec::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = proxy.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let proxy = serving.clone();
            let service = hyper::service::service_fn(move |request| relay(proxy.clone(), request));
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (proxy, format!("http://{addr}/batch"))
}

/// Forwards `request`; an `Err` makes hyper close the client's connection without
/// an answer.
async fn relay(
    proxy: Arc<Proxy>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers.clone();
    headers.remove(header::HOST);
    let forward = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream))
        .headers(headers)
        .body(body);
    let batch = parts.method == http::Method::POST;
    let loss = if batch && proxy.posts.fetch_add(1, Ordering::SeqCst) == 0 {
        proxy.loss
    } else {
        Loss::Never
    };
    let key = parts
        .headers
        .get("idempotency-key")
        .map(|key| key.to_str().unwrap().to_owned());
    let lost = || std::io::Error::other("the answer is lost on the way");
    if loss == Loss::WhileRunning {
        // The server runs the batch on: only the client's connection goes.
        tokio::spawn(forward.send());
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.record(key, None);
        return Err(lost());
    }
    let answered = forward.send().await.unwrap();
    let status = answered.status();
    let mut headers = answered.headers().clone();
    let bytes = answered.bytes().await.unwrap();
    if loss == Loss::AfterAnswer {
        proxy.record(key, None);
        return Err(lost());
    }
    if batch {
        let code = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|problem| problem["code"].as_str().map(str::to_owned));
        let replayed = headers
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        proxy.record(
            key,
            Some(Answer {
                status,
                replayed,
                code,
            }),
        );
    }
    for hop in [header::TRANSFER_ENCODING, header::CONNECTION] {
        headers.remove(hop);
    }
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// Whether item `id` exists on `server`.
async fn item_exists(server: &Server, id: u64) -> bool {
    let client = Client::new(&batch_url(server)).unwrap();
    let answer = client
        .send_single(&Operation::new("GET", format!("/items/{id}")))
        .await
        .unwrap();
    answer.status == StatusCode::OK
}

fn keys(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|s| s.key.clone().expect("every batch carries a key"))
        .collect()
}

#[tokio::test]
async fn a_batch_whose_answer_is_lost_is_sent_again_with_its_key_and_runs_once() {
    for framework in Framework::ALL {
        let name = framework.name();
        let server = start(framework, Config::default());
        let (proxy, url) = proxy(&server, Loss::AfterAnswer).await;
        let client = Client::new(&url).unwrap();
        assert!(client.capabilities().await.idempotency, "{name}");
        let before = counter(&server).await;

        let results = client
            .batch()
            .post("/items", json!({"name": "made once"}))
            .send()
            .await
            .unwrap();
        assert_eq!(results[0].status, 201, "{name}");
        assert_eq!(results[0].attempts, 2, "{name}: sent twice");
        let id = results[0].json::<Value>().unwrap()["id"].as_u64().unwrap();

        let seen = proxy.seen();
        assert_eq!(seen.len(), 2, "{name}: {seen:?}");
        let keys = keys(&seen);
        assert_eq!(keys[0], keys[1], "{name}: the resend carries the same key");
        assert!(seen[0].answer.is_none());
        let replay = seen[1].answer.as_ref().unwrap();
        assert_eq!(replay.status, 200, "{name}");
        assert!(
            replay.replayed,
            "{name}: the second answer is the first one"
        );

        // The op reached the app once (and /counter once more).
        assert_eq!(counter(&server).await, before + 2, "{name}");
        assert!(item_exists(&server, id).await);
        assert!(
            !item_exists(&server, id + 1).await,
            "{name}: no second item"
        );
    }
}

#[tokio::test]
async fn every_batch_has_its_own_key_and_a_refused_batch_keeps_its_key() {
    // The first batch the server gets is refused with 503: it ran nothing.
    let refused = Arc::new(AtomicBool::new(false));
    let config = Config::builder()
        .max_ops(2)
        .batch_hook(move |_| {
            let first = !refused.swap(true, Ordering::SeqCst);
            async move {
                if first {
                    Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "busy").retry_after(0))
                } else {
                    Ok(())
                }
            }
        })
        .build()
        .unwrap();
    let server = start(Framework::Axum, config);
    let (proxy, url) = proxy(&server, Loss::Never).await;
    let client = Client::builder(&url).concurrency(1).build().unwrap();

    let first = client
        .batch()
        .post("/items", json!({"name": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(first[0].status, 201);
    assert_eq!(first[0].attempts, 2);
    let seen = proxy.seen();
    assert_eq!(seen[0].answer.as_ref().unwrap().status, 503);
    assert_eq!(seen[1].answer.as_ref().unwrap().status, 200);
    assert!(!seen[1].answer.as_ref().unwrap().replayed, "it ran now");
    assert_eq!(
        seen[0].key, seen[1].key,
        "the refused batch is resent as it was"
    );

    // Another batch, one split in two, and an op retried after its 429: a new
    // key each time.
    client.batch().get("/health").send().await.unwrap();
    let split = client
        .batch()
        .get("/items/1")
        .get("/items/2")
        .get("/items/3")
        .send()
        .await
        .unwrap();
    assert!(split.iter().all(|r| r.status == 200));
    let flaky = client.batch().get("/flaky/k?fail=1").send().await.unwrap();
    assert_eq!(flaky[0].status, 200);
    assert_eq!(flaky[0].attempts, 2);

    let keys = keys(&proxy.seen());
    assert_eq!(keys.len(), 7, "{keys:?}");
    let mut distinct = keys[1..].to_vec();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 6, "{keys:?}");
    for key in &keys {
        assert_eq!(key.len(), 32, "{key}");
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    }
}

#[tokio::test]
async fn a_resend_while_the_first_still_runs_waits_for_its_answer() {
    let server = start(Framework::Warp, Config::default());
    let (proxy, url) = proxy(&server, Loss::WhileRunning).await;
    let client = Client::builder(&url)
        .retry(RetryPolicy::default().max_attempts(10))
        .build()
        .unwrap();
    let before = counter(&server).await;

    let results = client
        .batch()
        .post("/items", json!({"name": "slowly"}))
        .get("/slow?ms=1500")
        .send()
        .await
        .unwrap();
    assert_eq!(results[0].status, 201);
    assert_eq!(results[1].status, 200);

    let seen = proxy.seen();
    let keys = keys(&seen);
    assert!(keys.iter().all(|key| *key == keys[0]), "{seen:?}");
    let answers: Vec<&Answer> = seen.iter().filter_map(|s| s.answer.as_ref()).collect();
    let (last, waits) = answers.split_last().unwrap();
    assert!(
        !waits.is_empty(),
        "the resend came while the first ran: {seen:?}"
    );
    for wait in waits {
        assert_eq!(wait.status, 409);
        assert_eq!(wait.code.as_deref(), Some("idempotency_key_in_use"));
    }
    assert_eq!(last.status, 200);
    assert!(last.replayed);
    assert_eq!(counter(&server).await, before + 3, "two ops ran, once");
}

#[tokio::test]
async fn without_keys_a_lost_batch_is_resent_only_when_its_ops_are_idempotent() {
    let unkept = Config::builder().idempotency(false).build().unwrap();
    // A server that keeps no keys, and a client told to send none.
    for (config, keys_on) in [(unkept, true), (Config::default(), false)] {
        let server = start(Framework::Actix, config);
        let (proxy, url) = proxy(&server, Loss::AfterAnswer).await;
        let client = Client::builder(&url)
            .idempotency_keys(keys_on)
            .build()
            .unwrap();
        let before = counter(&server).await;
        match client
            .batch()
            .post("/items", json!({"name": "maybe"}))
            .send()
            .await
        {
            Err(Error::Transport(_)) => {}
            other => panic!("keys {keys_on}: {other:?}"),
        }
        let seen = proxy.seen();
        assert_eq!(seen.len(), 1, "keys {keys_on}: not resent: {seen:?}");
        assert_eq!(seen[0].key, None);
        assert_eq!(
            counter(&server).await,
            before + 2,
            "it ran, and the client could not know"
        );

        let reads = client
            .batch()
            .get("/items/1")
            .get("/health")
            .send()
            .await
            .unwrap();
        assert!(reads.iter().all(|r| r.status == 200 && r.attempts == 1));
    }

    // Sending reads again is harmless: a lost batch of them goes again.
    let server = start(
        Framework::Tower,
        Config::builder().idempotency(false).build().unwrap(),
    );
    let (proxy, url) = proxy(&server, Loss::AfterAnswer).await;
    let client = Client::new(&url).unwrap();
    assert!(!client.capabilities().await.idempotency);
    let reads = client
        .batch()
        .get("/items/1")
        .delete("/items/2")
        .send()
        .await
        .unwrap();
    assert_eq!(reads[0].status, 200);
    assert_eq!(reads[0].attempts, 2);
    assert_eq!(reads[1].status, 404, "deleted by the lost send");
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.key.is_none()));
}
