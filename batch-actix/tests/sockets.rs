//! Sockets on `actix-ws`, over real connections to a real `HttpServer`: what a
//! socket sees of changes made every way, and the upgrades the endpoint refuses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, web};
use batch_core::{Config, SocketConfig};
use futures::future::{Either, ready};
use futures::{SinkExt, StreamExt, TryFutureExt};
use serde_json::{Value, json};
use support::TestServer;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderName;
use tokio_tungstenite::tungstenite::{self, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Items = web::Data<Mutex<BTreeMap<u64, String>>>;

/// `GET/POST /items`, `GET/PATCH/DELETE /items/{id}`, behind a middleware that
/// answers `authorization: Bearer deny` with 401.
fn app(
    items: Items,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(items)
        .service(
            web::resource("/items")
                .route(web::get().to(list))
                .route(web::post().to(create)),
        )
        .service(
            web::resource("/items/{id}")
                .route(web::get().to(read))
                .route(web::patch().to(update))
                .route(web::delete().to(remove)),
        )
        .wrap_fn(|request: ServiceRequest, service| {
            let denied = request
                .headers()
                .get("authorization")
                .is_some_and(|v| v == "Bearer deny");
            if denied {
                let response = HttpResponse::Unauthorized().json(json!({"error": "denied"}));
                Either::Left(ready(Ok(request
                    .into_response(response)
                    .map_into_right_body())))
            } else {
                Either::Right(
                    service
                        .call(request)
                        .map_ok(ServiceResponse::map_into_left_body),
                )
            }
        })
}

async fn list(items: Items) -> HttpResponse {
    let items = items.lock().unwrap();
    let list: Vec<Value> = items
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    HttpResponse::Ok().json(list)
}

async fn create(items: Items, body: web::Json<Value>) -> HttpResponse {
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    let mut items = items.lock().unwrap();
    let id = items.keys().last().map_or(1, |last| last + 1);
    items.insert(id, name.clone());
    HttpResponse::Created()
        .insert_header(("location", format!("/items/{id}")))
        .json(json!({"id": id, "name": name}))
}

async fn read(items: Items, id: web::Path<u64>) -> HttpResponse {
    match items.lock().unwrap().get(&id) {
        Some(name) => HttpResponse::Ok().json(json!({"id": *id, "name": name})),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn update(items: Items, id: web::Path<u64>, body: web::Json<Value>) -> HttpResponse {
    let mut items = items.lock().unwrap();
    let Some(name) = items.get_mut(&id) else {
        return HttpResponse::NotFound().finish();
    };
    body["name"].as_str().unwrap_or_default().clone_into(name);
    HttpResponse::Ok().json(json!({"id": *id, "name": name}))
}

async fn remove(items: Items, id: web::Path<u64>) -> HttpResponse {
    match items.lock().unwrap().remove(&id) {
        Some(_) => HttpResponse::NoContent().finish(),
        None => HttpResponse::NotFound().finish(),
    }
}

fn sockets(sockets: SocketConfig) -> Config {
    Config::builder().sockets(sockets).build().unwrap()
}

fn start(config: Config) -> TestServer {
    let items = Items::default();
    TestServer::start(config, move || app(items.clone()))
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

/// The next message, control frames included, within 5 s.
async fn next_frame(socket: &mut Socket) -> Message {
    tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("a message within 5 s")
        .expect("the socket is open")
        .unwrap()
}

/// The next message that is not a control frame, within 5 s.
async fn next(socket: &mut Socket) -> Message {
    loop {
        let message = next_frame(socket).await;
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
fn request(server: &TestServer, method: &str, path: &str, body: &str) -> (u16, String) {
    let json = [("content-type", "application/json")];
    let response = server.send(method, path, &json, body.as_bytes());
    (
        response.status,
        String::from_utf8_lossy(&response.body).into_owned(),
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
    let server = start(sockets(SocketConfig::default()));
    let mut socket = connect(server.addr, &[]).await.unwrap();

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
    let (status, _) = request(&server, "PATCH", "/items/1", r#"{"name": "ink"}"#);
    assert_eq!(status, 200);
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "patch", "uri": "/items/1", "patch": {"name": "ink"}})
    );
    let (status, body) = request(&server, "POST", "/items", r#"{"name": "cap"}"#);
    assert_eq!((status, body.as_str()), (201, r#"{"id":2,"name":"cap"}"#));
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "create", "uri": "/items/", "resource": {"id": 2, "name": "cap"}, "location": "/items/2"})
    );
    let (status, _) = request(&server, "DELETE", "/items/2", "");
    assert_eq!(status, 204);
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "delete", "uri": "/items/2"})
    );
    assert_no_event(&mut socket).await;

    // A refused REST mutation: none.
    let (status, _) = request(&server, "DELETE", "/items/2", "");
    assert_eq!(status, 404);
    assert_no_event(&mut socket).await;

    // An op of a batch: one, and none for its refused twin.
    let (status, body) = server.batch(json!([
        {"id": "a", "method": "DELETE", "url": "/items/1"},
        {"method": "DELETE", "url": "/items/1", "depends_on": "a"}
    ]));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["results"][0]["status"], &body["results"][1]["status"]),
        (&json!(204), &json!(404))
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
    let server = start(sockets(config));
    assert_eq!(
        connect(server.addr, &[("origin", "https://evil.example")])
            .await
            .err(),
        Some(403)
    );
    assert!(
        connect(server.addr, &[("origin", "https://app.example")])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn middleware_that_refuses_a_get_refuses_the_upgrade_with_its_answer() {
    let server = start(sockets(SocketConfig::default()));
    assert_eq!(
        connect(server.addr, &[("authorization", "Bearer deny")])
            .await
            .err(),
        Some(401)
    );
    let mut socket = connect(server.addr, &[("authorization", "Bearer ok")])
        .await
        .unwrap();
    send(&mut socket, json!({"type": "subscribe", "uri": "/items/"})).await;
    assert_eq!(next_json(&mut socket).await["type"], "state");
}

#[tokio::test]
async fn a_message_over_the_limit_closes_the_socket_with_1009() {
    // Larger than actix-ws's own 64 KiB frame limit, which would end the socket
    // without a close frame were it left in place.
    let config = SocketConfig::builder()
        .max_message(100 * 1024)
        .build()
        .unwrap();
    let server = start(sockets(config));
    let mut socket = connect(server.addr, &[]).await.unwrap();
    let padding = "x".repeat(150 * 1024);
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
async fn a_ping_is_answered_with_a_pong() {
    let server = start(sockets(SocketConfig::default()));
    let mut socket = connect(server.addr, &[]).await.unwrap();
    socket
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(
        next_frame(&mut socket).await,
        Message::Pong(b"are you there".to_vec().into())
    );
}

#[tokio::test]
async fn ops_for_the_socket_path_are_404_and_plain_requests_426() {
    let server = start(sockets(SocketConfig::default()));
    let (status, body) = server.batch(json!([{"url": "/socket"}]));
    assert_eq!((status, &body["results"][0]["status"]), (200, &json!(404)));
    assert_eq!(request(&server, "GET", "/socket", "").0, 426);
    let server = start(Config::default());
    assert_eq!(
        request(&server, "GET", "/socket", "").0,
        StatusCode::NOT_FOUND.as_u16(),
        "with sockets off, the path is the App's"
    );
    assert_eq!(connect(server.addr, &[]).await.err(), Some(404));
}
