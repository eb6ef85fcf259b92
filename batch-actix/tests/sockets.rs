//! Sockets on `actix-ws`, over real connections to a real `HttpServer`: an upgrade
//! goes through the App's middleware, actix-ws's own frame limit and pings give way
//! to the endpoint's, and the socket path is the App's own when sockets are off.
//! The protocol, events, origins and limits are the conformance suite's `socket`
//! scenarios, run on every adapter.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpResponse, web};
use batch_core::{Config, SocketConfig};
use fixture::socket_client::JsonSocket;
use futures::TryFutureExt;
use futures::future::{Either, ready};
use serde_json::json;
use support::TestServer;

const WITHIN: Duration = Duration::from_secs(5);

/// `GET /items` (always `[]`), behind a middleware that answers
/// `authorization: Bearer deny` with 401.
fn app() -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .route(
            "/items",
            web::get().to(|| async { HttpResponse::Ok().json(json!([])) }),
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

fn sockets(sockets: SocketConfig) -> Config {
    Config::builder().sockets(sockets).build().unwrap()
}

fn start(config: Config) -> (TestServer, String) {
    let server = TestServer::start(config, app);
    let base = format!("http://{}", server.addr);
    (server, base)
}

#[tokio::test]
async fn middleware_that_refuses_a_get_refuses_the_upgrade_with_its_answer() {
    let (_server, base) = start(sockets(SocketConfig::default()));
    let denied = JsonSocket::connect(&base, &[("authorization", "Bearer deny")]).await;
    assert_eq!(denied.unwrap_err().refused_with(), Some(401));
    let mut socket = JsonSocket::connect(&base, &[("authorization", "Bearer ok")])
        .await
        .unwrap();
    let state = socket.subscribe("/items/", WITHIN).await.unwrap();
    assert_eq!(state["type"], "state", "{state}");
}

#[tokio::test]
async fn a_message_over_the_limit_closes_the_socket_with_1009() {
    // Larger than actix-ws's own 64 KiB frame limit, which would end the socket
    // without a close frame were it left in place.
    let config = SocketConfig::builder()
        .max_message(100 * 1024)
        .build()
        .unwrap();
    let (_server, base) = start(sockets(config));
    let mut socket = JsonSocket::open(&base).await.unwrap();
    let padding = "x".repeat(150 * 1024);
    socket
        .send(&json!({"type": "subscribe", "uri": "/items/", "pad": padding}))
        .await
        .unwrap();
    assert_eq!(socket.close_code(WITHIN).await.unwrap(), Some(1009));
}

#[tokio::test]
async fn a_ping_is_answered_with_a_pong() {
    let (_server, base) = start(sockets(SocketConfig::default()));
    let mut socket = JsonSocket::open(&base).await.unwrap();
    let pong = socket.ping(b"are you there", WITHIN).await.unwrap();
    assert_eq!(pong, b"are you there");
}

#[tokio::test]
async fn ops_for_the_socket_path_are_404_and_plain_requests_426() {
    let (server, _) = start(sockets(SocketConfig::default()));
    let (status, body) = server.batch(json!([{"url": "/socket"}]));
    assert_eq!((status, &body["results"][0]["status"]), (200, &json!(404)));
    assert_eq!(server.send("GET", "/socket", &[], b"").status, 426);
    let (server, base) = start(Config::default());
    assert_eq!(
        server.send("GET", "/socket", &[], b"").status,
        404,
        "with sockets off, the path is the App's"
    );
    assert_eq!(
        JsonSocket::open(&base).await.unwrap_err().refused_with(),
        Some(404)
    );
}
