//! The Server-Sent Events stream (`GET /events?uri=…`) of every adapter that serves
//! sockets, read over real HTTP by a plain SSE reader: states first, changes with
//! their cursor as `id:`, resuming with `Last-Event-ID`, refusals before the stream,
//! `error` for a URI the client may not read, revocation, and keep-alive comments.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::SocketAddr;
use std::time::Duration;

use batch_core::{BatchEndpoint, Config, SocketConfig};
use bytes::Bytes;
use fixture::Server;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

type Start = fn(SocketAddr, BatchEndpoint) -> std::io::Result<Server>;

/// Every adapter's fixture server that serves sockets.
const ADAPTERS: [(&str, Start); 4] = [
    ("axum", |addr, endpoint| {
        fixture::axum::start(addr, endpoint)
    }),
    ("actix", |addr, endpoint| {
        fixture::actix::start(addr, endpoint)
    }),
    ("warp", |addr, endpoint| {
        fixture::warp::start(addr, endpoint)
    }),
    ("tower", |addr, endpoint| {
        fixture::tower::start(addr, endpoint)
    }),
];

/// How long a step waits for an event, at most: generous, it bounds a wait.
const WAIT: Duration = Duration::from_secs(5);

/// One event as a reader sees it: its name (`comment` for a comment line), `id`,
/// and `data` parsed as JSON.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    event: String,
    id: Option<String>,
    data: Value,
}

/// A plain Server-Sent Events reader over one response's body.
struct Reader {
    body: Incoming,
    buffer: Vec<u8>,
}

impl Reader {
    /// The next event, comments included; `None` when the stream ended or nothing
    /// came in time.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                return Some(parse(&String::from_utf8_lossy(&block)));
            }
            let frame = tokio::time::timeout(WAIT, self.body.frame()).await.ok()??;
            if let Ok(data) = frame.ok()?.into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
    }

    /// The next event that is not a comment.
    async fn event(&mut self) -> Option<Sse> {
        loop {
            let event = self.next().await?;
            if event.event != "comment" {
                return Some(event);
            }
        }
    }

    /// Whether no event but comments comes for `wait`.
    async fn silent(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.event()).await.is_err()
    }
}

fn parse(block: &str) -> Sse {
    let mut event = "message".to_owned();
    let mut id = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            event = "comment".to_owned();
        } else if let Some(name) = line.strip_prefix("event:") {
            event = name.trim_start().to_owned();
        } else if let Some(value) = line.strip_prefix("id:") {
            id = Some(value.trim_start().to_owned());
        } else if let Some(line) = line.strip_prefix("data:") {
            data.push(line.strip_prefix(' ').unwrap_or(line));
        }
    }
    let data = serde_json::from_str(&data.join("\n")).unwrap_or(Value::Null);
    Sse { event, id, data }
}

struct Harness {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
    _server: Server,
}

impl Harness {
    fn new(start: Start, sockets: SocketConfig) -> Self {
        let config = Config::builder().sockets(sockets).build().unwrap();
        let server = start(SocketAddr::from(([127, 0, 0, 1], 0)), config.into()).unwrap();
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            url: server.url(),
            _server: server,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Response<Incoming> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(body.to_string()))
            }
            None => Full::default(),
        };
        self.client
            .request(request.body(body).unwrap())
            .await
            .unwrap()
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let response = self.send(method, path, &[], body).await;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn item(&self, name: &str) -> u64 {
        let (status, body) = self
            .call("POST", "/items", Some(json!({"name": name})))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        body["id"].as_u64().unwrap()
    }

    async fn events(
        &self,
        query: &str,
        headers: &[(&str, &str)],
    ) -> (Response<()>, Option<Reader>) {
        let mut headers = headers.to_vec();
        headers.push(("accept", "text/event-stream"));
        let response = self
            .send("GET", &format!("/events?{query}"), &headers, None)
            .await;
        let (parts, body) = response.into_parts();
        let reader = (parts.status == StatusCode::OK).then(|| Reader {
            body,
            buffer: Vec::new(),
        });
        (Response::from_parts(parts, ()), reader)
    }

    async fn open(&self, query: &str, headers: &[(&str, &str)]) -> Reader {
        let (head, reader) = self.events(query, headers).await;
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(head.headers()["content-type"], "text/event-stream");
        reader.unwrap()
    }
}

fn run(test: impl AsyncFn(&str, Start)) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for (name, start) in ADAPTERS {
        runtime.block_on(test(name, start));
    }
}

#[test]
fn states_then_changes_with_their_cursor_once_each() {
    run(async |adapter, start| {
        let harness = Harness::new(start, SocketConfig::default());
        let id = harness.item("sse").await;
        let mut reader = harness
            .open(&format!("uri=/items/{id}&uri=%2Fitems%2F"), &[])
            .await;
        let state = reader.event().await.unwrap();
        assert_eq!(
            (state.event.as_str(), state.id.as_ref()),
            ("state", None),
            "{adapter}"
        );
        assert_eq!(
            state.data["uri"],
            json!(format!("/items/{id}")),
            "{adapter}"
        );
        assert_eq!(state.data["resource"]["name"], "sse", "{adapter}");
        let list = reader.event().await.unwrap();
        assert_eq!(
            (list.event.as_str(), &list.data["uri"]),
            ("state", &json!("/items/")),
            "{adapter}"
        );
        harness
            .call(
                "PATCH",
                &format!("/items/{id}"),
                Some(json!({"name": "one"})),
            )
            .await;
        let patch = reader.event().await.unwrap();
        assert_eq!(patch.event, "patch", "{adapter}");
        assert_eq!(patch.data["patch"], json!({"name": "one"}), "{adapter}");
        assert_eq!(
            patch.id.as_ref(),
            patch.data["seq"].as_str().map(str::to_owned).as_ref(),
            "{adapter}"
        );
        assert!(
            reader.silent(Duration::from_millis(300)).await,
            "{adapter}: one copy only"
        );
        // Resumed from the last id: each URI resumed, the missed change once.
        let last = patch.id.unwrap();
        drop(reader);
        harness
            .call(
                "PATCH",
                &format!("/items/{id}"),
                Some(json!({"name": "two"})),
            )
            .await;
        let query = format!("uri=/items/{id}&uri=/items/");
        let mut reader = harness.open(&query, &[("last-event-id", &last)]).await;
        for uri in [format!("/items/{id}"), "/items/".to_owned()] {
            let resumed = reader.event().await.unwrap();
            assert_eq!(resumed.event, "resumed", "{adapter}");
            assert_eq!(
                resumed.data,
                json!({"type": "resumed", "uri": uri}),
                "{adapter}"
            );
        }
        let missed = reader.event().await.unwrap();
        assert_eq!(
            (missed.event.as_str(), &missed.data["patch"]),
            ("patch", &json!({"name": "two"})),
            "{adapter}"
        );
        assert!(missed.id.is_some(), "{adapter}");
        assert!(reader.silent(Duration::from_millis(300)).await, "{adapter}");
        // A cursor not covered: a fresh state, reset.
        let mut reader = harness.open(&query, &[("last-event-id", "nope")]).await;
        let state = reader.event().await.unwrap();
        assert_eq!(
            (state.event.as_str(), &state.data["reset"]),
            ("state", &json!(true)),
            "{adapter}"
        );
    });
}

#[test]
fn bad_requests_are_refused_before_the_stream_and_unreadable_uris_get_error() {
    run(async |adapter, start| {
        let sockets = SocketConfig::builder()
            .max_subscriptions(2)
            .build()
            .unwrap();
        let harness = Harness::new(start, sockets);
        for (query, status) in [
            ("", StatusCode::BAD_REQUEST),
            ("other=/items/", StatusCode::BAD_REQUEST),
            ("uri=/items/../x", StatusCode::UNPROCESSABLE_ENTITY),
            ("uri=items", StatusCode::UNPROCESSABLE_ENTITY),
            ("uri=/a&uri=/b&uri=/c", StatusCode::TOO_MANY_REQUESTS),
        ] {
            let (head, _) = harness.events(query, &[]).await;
            assert_eq!(head.status(), status, "{adapter}: {query}");
        }
        let mut reader = harness.open("uri=/whoami&uri=/items/", &[]).await;
        let error = reader.event().await.unwrap();
        assert_eq!(
            (error.event.as_str(), &error.data["status"]),
            ("error", &json!(401)),
            "{adapter}"
        );
        let state = reader.event().await.unwrap();
        assert_eq!(state.event, "state", "{adapter}");
        let id = harness.item("after-error").await;
        let create = reader.event().await.unwrap();
        assert_eq!(
            (create.event.as_str(), &create.data["resource"]["id"]),
            ("create", &json!(id)),
            "{adapter}"
        );
    });
}

#[test]
fn a_revoked_subscription_ends_with_revoked_and_keep_alives_flow() {
    run(async |adapter, start| {
        let sockets = SocketConfig::builder()
            .recheck(Some(Duration::ZERO))
            .ping_interval(Duration::from_millis(200))
            .build()
            .unwrap();
        let harness = Harness::new(start, sockets);
        let id = harness.item("guarded").await;
        let mut reader = harness
            .open(
                &format!("uri=/items/{id}"),
                &[("authorization", "Bearer mallory")],
            )
            .await;
        assert_eq!(reader.event().await.unwrap().event, "state", "{adapter}");
        let comment = reader.next().await.unwrap();
        assert_eq!(comment.event, "comment", "{adapter}: a keep-alive comment");
        harness
            .call(
                "PUT",
                &format!("/acl/items/{id}"),
                Some(json!({"deny": ["mallory"]})),
            )
            .await;
        harness
            .call(
                "PATCH",
                &format!("/items/{id}"),
                Some(json!({"name": "secret"})),
            )
            .await;
        let revoked = reader.event().await.unwrap();
        assert_eq!(revoked.event, "revoked", "{adapter}");
        assert_eq!(
            revoked.data,
            json!({"type": "revoked", "uri": format!("/items/{id}"), "status": 403}),
            "{adapter}"
        );
        assert!(revoked.id.is_none(), "{adapter}");
        harness
            .call(
                "PATCH",
                &format!("/items/{id}"),
                Some(json!({"name": "secret-2"})),
            )
            .await;
        assert!(reader.silent(Duration::from_millis(500)).await, "{adapter}");
    });
}

#[test]
fn a_resume_replays_a_full_history_with_the_default_queue() {
    run(async |adapter, start| {
        let harness = Harness::new(start, SocketConfig::default());
        let id = harness.item("first").await;
        let mut reader = harness.open("uri=/items/", &[]).await;
        assert_eq!(reader.event().await.unwrap().event, "state", "{adapter}");
        harness
            .call(
                "PATCH",
                &format!("/items/{id}"),
                Some(json!({"name": "seen"})),
            )
            .await;
        let last = reader.event().await.unwrap().id.unwrap();
        drop(reader);
        // As many missed as the default history holds, more than `max_queued`.
        for chunk in 0..20 {
            let ops: Vec<Value> = (0..50)
                .map(|i| json!({"method": "POST", "url": "/items", "body": {"name": format!("m{}", chunk * 50 + i)}}))
                .collect();
            let (status, _) = harness
                .call("POST", "/batch", Some(json!({ "ops": ops })))
                .await;
            assert_eq!(status, StatusCode::OK, "{adapter}");
        }
        let mut reader = harness
            .open("uri=/items/", &[("last-event-id", &last)])
            .await;
        assert_eq!(reader.event().await.unwrap().event, "resumed", "{adapter}");
        for i in 0..1000 {
            let event = reader
                .event()
                .await
                .unwrap_or_else(|| panic!("{adapter}: missed event {i}"));
            assert_eq!(
                (event.event.as_str(), &event.data["resource"]["name"]),
                ("create", &json!(format!("m{i}"))),
                "{adapter}: in order, each once"
            );
        }
        harness.item("live").await;
        let live = reader.event().await.unwrap();
        assert_eq!(live.data["resource"]["name"], "live", "{adapter}");
    });
}
