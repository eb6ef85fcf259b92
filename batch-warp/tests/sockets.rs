//! Sockets on warp's own `ws` filter, over real connections: what a socket sees of
//! changes made every way, the upgrades the endpoint refuses, and what a direct
//! mutation's filters see once sockets are on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use batch_core::{Config, SocketConfig};
use common::{send as http, serve};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderName;
use tokio_tungstenite::tungstenite::{self, Message};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Items = Arc<Mutex<BTreeMap<u64, String>>>;

/// Refused (401) when the request says `authorization: Bearer deny`, as an
/// authentication filter would.
#[derive(Debug)]
struct Denied;
impl warp::reject::Reject for Denied {}

/// `GET/POST /items`, `GET/PATCH/DELETE /items/{id}` and `PATCH /whoami` behind a
/// filter that refuses `authorization: Bearer deny`, every rejection recovered.
fn routes() -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static
{
    let items = Items::default();
    let items = warp::any().map(move || items.clone());
    let deny = warp::header::optional::<String>("authorization")
        .and_then(|auth: Option<String>| async move {
            if auth.as_deref() == Some("Bearer deny") {
                Err(warp::reject::custom(Denied))
            } else {
                Ok(())
            }
        })
        .untuple_one();
    let list = warp::path!("items")
        .and(warp::get())
        .and(items.clone())
        .map(|items: Items| {
            let items = items.lock().unwrap();
            let list: Vec<Value> = items
                .iter()
                .map(|(id, name)| json!({"id": id, "name": name}))
                .collect();
            warp::reply::json(&list).into_response()
        });
    let create = warp::path!("items")
        .and(warp::post())
        .and(items.clone())
        .and(warp::body::json())
        .map(|items: Items, body: Value| {
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            let mut items = items.lock().unwrap();
            let id = items.keys().last().map_or(1, |last| last + 1);
            items.insert(id, name.clone());
            let reply = warp::reply::json(&json!({"id": id, "name": name}));
            let reply = warp::reply::with_status(reply, StatusCode::CREATED);
            warp::reply::with_header(reply, "location", format!("/items/{id}")).into_response()
        });
    let read = warp::path!("items" / u64)
        .and(warp::get())
        .and(items.clone())
        .map(
            |id: u64, items: Items| match items.lock().unwrap().get(&id) {
                Some(name) => warp::reply::json(&json!({"id": id, "name": name})).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            },
        );
    let update = warp::path!("items" / u64)
        .and(warp::patch())
        .and(items.clone())
        .and(warp::body::json())
        .map(|id: u64, items: Items, body: Value| {
            let mut items = items.lock().unwrap();
            let Some(name) = items.get_mut(&id) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            body["name"].as_str().unwrap_or_default().clone_into(name);
            warp::reply::json(&json!({"id": id, "name": name})).into_response()
        });
    let remove = warp::path!("items" / u64)
        .and(warp::delete())
        .and(items)
        .map(
            |id: u64, items: Items| match items.lock().unwrap().remove(&id) {
                Some(_) => StatusCode::NO_CONTENT.into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            },
        );
    let whoami = warp::path!("whoami")
        .and(warp::patch())
        .and(batch_warp::remote())
        .and(warp::addr::remote())
        .map(
            |remote: Option<SocketAddr>, warp_remote: Option<SocketAddr>| {
                warp::reply::json(&json!({
                    "remote": remote.map(|a| a.ip().to_string()),
                    "warp_remote": warp_remote.map(|a| a.ip().to_string()),
                }))
                .into_response()
            },
        );
    deny.and(
        list.or(create)
            .unify()
            .or(read)
            .unify()
            .or(update)
            .unify()
            .or(remove)
            .unify()
            .or(whoami)
            .unify(),
    )
    .recover(|rejection: Rejection| async move {
        let status = if rejection.find::<Denied>().is_some() {
            StatusCode::UNAUTHORIZED
        } else if rejection.is_not_found() {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_REQUEST
        };
        Ok::<_, Infallible>(status.into_response())
    })
    .unify()
}

fn sockets(sockets: SocketConfig) -> Config {
    Config::builder().sockets(sockets).build().unwrap()
}

async fn start(config: Config) -> SocketAddr {
    serve(batch_warp::with_batch(routes(), config)).await
}

/// Opens a socket with `headers` on the upgrade; a refusal is its HTTP status.
async fn connect(addr: SocketAddr, headers: &[(&str, &str)]) -> Result<Socket, u16> {
    let mut request = format!("ws://{addr}/socket").into_client_request().unwrap();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(err) => panic!("no answer to the upgrade: {err}"),
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next message that is not a control frame, within 5 s.
async fn next(socket: &mut Socket) -> Message {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a message within 5 s")
            .expect("the socket is open")
            .unwrap();
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

async fn next_json(socket: &mut Socket) -> Value {
    match next(socket).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("not a text message: {other:?}"),
    }
}

/// The answer to a message and the event it caused, in whichever order they came.
async fn answer_and_event(socket: &mut Socket) -> (Value, Value) {
    let (first, second) = (next_json(socket).await, next_json(socket).await);
    if first["type"] == "result" {
        (first, second)
    } else {
        (second, first)
    }
}

/// Sends `method path` with a JSON `body`; returns the status and the body.
async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: {}",
        body.len()
    );
    let answer = http(addr, &head, body.as_bytes()).await;
    (
        answer.status,
        String::from_utf8_lossy(&answer.body).into_owned(),
    )
}

/// Nothing arrived before the answer to a marker message: no event was pending.
async fn assert_no_event(socket: &mut Socket) {
    send(
        socket,
        json!({"type": "unsubscribe", "uri": "/nothing/", "ref": "marker"}),
    )
    .await;
    assert_eq!(
        next_json(socket).await,
        json!({"type": "unsubscribed", "uri": "/nothing/", "ref": "marker"})
    );
}

#[tokio::test]
async fn a_subscriber_sees_one_event_per_change_whichever_way_it_was_made() {
    let addr = start(sockets(SocketConfig::default())).await;
    let mut socket = connect(addr, &[]).await.unwrap();

    send(
        &mut socket,
        json!({"type": "subscribe", "uri": "/items/", "ref": "s"}),
    )
    .await;
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "state", "uri": "/items/", "resource": [], "ref": "s"})
    );

    // A socket message.
    send(
        &mut socket,
        json!({"type": "create", "uri": "/items/", "attributes": {"name": "pen"}, "ref": "c"}),
    )
    .await;
    let (result, event) = answer_and_event(&mut socket).await;
    assert_eq!(
        (result["status"].as_u64(), result["ref"].as_str()),
        (Some(201), Some("c"))
    );
    assert_eq!(
        event,
        json!({"type": "create", "uri": "/items/", "resource": {"id": 1, "name": "pen"}, "location": "/items/1"})
    );

    // Plain REST requests: one event each.
    let (status, _) = request(addr, "PATCH", "/items/1", r#"{"name": "ink"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "patch", "uri": "/items/1", "patch": {"name": "ink"}})
    );
    let (status, body) = request(addr, "POST", "/items", r#"{"name": "cap"}"#).await;
    assert_eq!((status, body.as_str()), (201, r#"{"id":2,"name":"cap"}"#));
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "create", "uri": "/items/", "resource": {"id": 2, "name": "cap"}, "location": "/items/2"})
    );
    let (status, _) = request(addr, "DELETE", "/items/2", "").await;
    assert_eq!(status, 204);
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "delete", "uri": "/items/2"})
    );
    assert_no_event(&mut socket).await;

    // A refused REST mutation: none.
    let (status, _) = request(addr, "DELETE", "/items/2", "").await;
    assert_eq!(status, 404);
    assert_no_event(&mut socket).await;

    // An op of a batch: one, and none for its refused twin.
    let batch = r#"{"ops": [{"id": "a", "method": "DELETE", "url": "/items/1"}, {"method": "DELETE", "url": "/items/1", "depends_on": "a"}]}"#;
    let (status, body) = request(addr, "POST", "/batch", batch).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""status":204"#) && body.contains(r#""status":404"#),
        "{body}"
    );
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "delete", "uri": "/items/1"})
    );
    assert_no_event(&mut socket).await;
}

#[tokio::test]
async fn a_browser_origin_not_allowed_is_refused_with_403() {
    let config = SocketConfig::builder()
        .allow_origins(["https://app.example"])
        .build()
        .unwrap();
    let addr = start(sockets(config)).await;
    assert_eq!(
        connect(addr, &[("origin", "https://evil.example")])
            .await
            .err(),
        Some(403)
    );
    assert!(
        connect(addr, &[("origin", "https://app.example")])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_filter_that_refuses_a_get_refuses_the_upgrade_with_its_answer() {
    let addr = start(sockets(SocketConfig::default())).await;
    assert_eq!(
        connect(addr, &[("authorization", "Bearer deny")])
            .await
            .err(),
        Some(401)
    );
    let mut socket = connect(addr, &[("authorization", "Bearer ok")])
        .await
        .unwrap();
    send(&mut socket, json!({"type": "subscribe", "uri": "/items/"})).await;
    assert_eq!(next_json(&mut socket).await["type"], "state");
}

#[tokio::test]
async fn a_message_over_the_limit_closes_the_socket_with_1009() {
    let config = SocketConfig::builder().max_message(1024).build().unwrap();
    let addr = start(sockets(config)).await;
    let mut socket = connect(addr, &[]).await.unwrap();
    let padding = "x".repeat(2000);
    send(
        &mut socket,
        json!({"type": "subscribe", "uri": "/items/", "pad": padding}),
    )
    .await;
    match next(&mut socket).await {
        Message::Close(Some(close)) => assert_eq!(u16::from(close.code), 1009),
        other => panic!("expected a close, got {other:?}"),
    }
}

#[tokio::test]
async fn the_socket_path_without_an_upgrade_is_426_and_with_sockets_off_is_the_routes() {
    let addr = start(sockets(SocketConfig::default())).await;
    assert_eq!(request(addr, "GET", "/socket", "").await.0, 426);
    let addr = start(Config::default()).await;
    assert_eq!(request(addr, "GET", "/socket", "").await.0, 404);
    assert_eq!(connect(addr, &[]).await.err(), Some(404));
}

#[tokio::test]
async fn with_sockets_on_a_mutation_has_batch_warp_remote_but_not_warp_addr_remote() {
    let seen = |on: bool| async move {
        let config = if on {
            sockets(SocketConfig::default())
        } else {
            Config::default()
        };
        let addr = start(config).await;
        let (status, body) = request(addr, "PATCH", "/whoami", "").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    assert_eq!(
        seen(false).await,
        json!({"remote": "127.0.0.1", "warp_remote": "127.0.0.1"})
    );
    assert_eq!(
        seen(true).await,
        json!({"remote": "127.0.0.1", "warp_remote": null}),
        "dispatched through warp::service, which knows no connection"
    );
}
