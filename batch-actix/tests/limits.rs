//! The endpoint's byte limits hold under actix: the outer body, op response bodies.

mod support;

use actix_web::body::SizedStream;
use actix_web::{App, HttpResponse, web};
use batch_core::Config;
use bytes::Bytes;
use serde_json::json;
use support::TestServer;

fn padded_batch(len: usize) -> Vec<u8> {
    let mut body = br#"{"ops": [{"url": "/ok"}]}"#.to_vec();
    body.resize(len, b' ');
    body
}

fn ok_app() -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new().route("/ok", web::get().to(HttpResponse::Ok))
}

#[test]
fn an_outer_body_over_max_body_is_refused_with_413_and_one_at_the_limit_runs() {
    let config = Config::builder().max_body(1024).build().unwrap();
    let server = TestServer::start(config, ok_app);
    let json = [("content-type", "application/json")];

    let response = server.send("POST", "/batch", &json, &padded_batch(1024));
    assert_eq!(
        response.status, 200,
        "a body of exactly the limit is accepted"
    );
    assert_eq!(response.json()["results"][0]["status"], 200);

    let response = server.send("POST", "/batch", &json, &padded_batch(1025));
    assert_eq!(response.status, 413);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(response.json()["status"], 413);
}

#[test]
fn a_refused_outer_body_closes_the_connection_it_did_not_read() {
    let config = Config::builder().max_body(1024).build().unwrap();
    let server = TestServer::start(config, ok_app);
    let keep_alive = [
        ("content-type", "application/json"),
        ("connection", "keep-alive"),
    ];
    // Read until the server closes: only a connection the server closes ends.
    let response = server.send("POST", "/batch", &keep_alive, &padded_batch(2048));
    assert_eq!(response.status, 413);
    assert_eq!(response.header("connection"), Some("close"));
}

#[test]
fn a_chunked_outer_body_over_max_body_is_refused_with_413() {
    let config = Config::builder().max_body(1024).build().unwrap();
    let server = TestServer::start(config, ok_app);
    let body = padded_batch(1500);
    let response = server.send_chunked(&[&body[..700], &body[700..]]);
    assert_eq!(response.status, 413);
    assert_eq!(response.json()["status"], 413);

    let body = padded_batch(1000);
    let response = server.send_chunked(&[&body[..500], &body[500..]]);
    assert_eq!(response.status, 200, "chunked under the limit runs");
}

#[test]
fn the_configured_limit_replaces_actix_payload_default() {
    // actix's PayloadConfig default is 256 KiB; the endpoint's default is 1 MiB.
    let server = TestServer::start(Config::default(), ok_app);
    let response = server.send(
        "POST",
        "/batch",
        &[("content-type", "application/json")],
        &padded_batch(600 * 1024),
    );
    assert_eq!(response.status, 200);
}

#[test]
fn an_op_response_over_max_response_body_answers_that_op_with_502() {
    let config = Config::builder().max_response_body(100).build().unwrap();
    let server = TestServer::start(config, || {
        App::new()
            .route(
                "/big",
                web::get().to(|| async { HttpResponse::Ok().body(vec![b'x'; 101]) }),
            )
            .route(
                "/streamed",
                web::get().to(|| async {
                    let chunks = futures::stream::iter(
                        (0..5).map(|_| Ok::<_, actix_web::Error>(Bytes::from_static(&[b'y'; 40]))),
                    );
                    HttpResponse::Ok().streaming(chunks)
                }),
            )
            .route(
                "/lying",
                web::get().to(|| async {
                    let chunks = futures::stream::iter(
                        (0..3).map(|_| Ok::<_, actix_web::Error>(Bytes::from_static(&[b'z'; 40]))),
                    );
                    HttpResponse::Ok().body(SizedStream::new(120, chunks))
                }),
            )
            .route(
                "/fits",
                web::get().to(|| async { HttpResponse::Ok().body(vec![b'x'; 100]) }),
            )
            .route(
                "/sized",
                web::get().to(|| async {
                    let chunks = futures::stream::iter(
                        (0..2).map(|_| Ok::<_, actix_web::Error>(Bytes::from_static(&[b'w'; 40]))),
                    );
                    HttpResponse::Ok().body(SizedStream::new(80, chunks))
                }),
            )
    });
    let (status, body) = server.batch(json!([
        {"url": "/big"}, {"url": "/streamed"}, {"url": "/lying"}, {"url": "/fits"},
        {"url": "/sized"}
    ]));
    assert_eq!(status, 200);
    let results = body["results"].as_array().unwrap();
    for result in &results[..3] {
        assert_eq!(result["status"], 502, "{result}");
        assert_eq!(result["body"], json!({"error": "response_too_large"}));
    }
    assert_eq!(results[3]["status"], 200);
    assert_eq!(results[3]["body"], "x".repeat(100));
    // A stream that states its size within the limit is read, not taken whole.
    assert_eq!(results[4]["status"], 200);
    assert_eq!(results[4]["body"], "w".repeat(80));
}

#[test]
fn a_batch_inside_a_batch_is_refused() {
    let server = TestServer::start(Config::default(), ok_app);
    let (status, body) = server.batch(json!([
        {"url": "/ok"},
        {"method": "POST", "url": "/batch", "body": {"ops": [{"url": "/ok"}]}},
    ]));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["op"], 1);
}
