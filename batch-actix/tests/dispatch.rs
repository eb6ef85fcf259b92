//! Every op runs through the real App: its middleware, data, scopes and extractors.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::dev::Service;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, web};
use batch_core::{BatchOp, Config};
use serde_json::json;
use support::TestServer;

#[derive(Default)]
struct Hits(AtomicU64);

#[derive(serde::Deserialize)]
struct Page {
    limit: u32,
}

/// An App with a counting `wrap_fn`, `web::Data`, a scope and typed extractors.
fn app(
    hits: web::Data<Hits>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(hits)
        .service(
            web::scope("/api")
                .route(
                    "/users/{id}/posts/{post}",
                    web::get().to(
                        |path: web::Path<(u32, String)>, query: web::Query<Page>| async move {
                            let (id, post) = path.into_inner();
                            HttpResponse::Ok()
                                .json(json!({"id": id, "post": post, "limit": query.limit}))
                        },
                    ),
                )
                .route(
                    "/hits",
                    web::get().to(|hits: web::Data<Hits>| async move {
                        HttpResponse::Ok().json(json!({"hits": hits.0.load(Ordering::SeqCst)}))
                    }),
                ),
        )
        .route(
            "/whoami",
            web::get().to(|req: HttpRequest| async move {
                let info = req.connection_info().clone();
                let op = req.extensions().get::<BatchOp>().map(BatchOp::index);
                HttpResponse::Ok().json(json!({
                    "host": info.host(),
                    "peer": req.peer_addr().map(|a| a.ip().to_string()),
                    "op": op,
                    "auth": req.headers().get("authorization").and_then(|v| v.to_str().ok()),
                    "url_for": req.url_for("whoami", [""; 0]).ok().map(|u| u.path().to_owned()),
                }))
            }),
        )
        .service(web::resource("/named").name("whoami").to(HttpResponse::Ok))
        .route(
            "/echo",
            web::post().to(|body: web::Json<serde_json::Value>| async move {
                HttpResponse::Ok().json(body.0)
            }),
        )
        .wrap_fn(|req, srv| {
            let forbidden = req.path() == "/forbidden";
            let response = srv.call(req);
            async move {
                if forbidden {
                    return Err(actix_web::error::ErrorForbidden("not for you"));
                }
                response.await
            }
        })
        .wrap_fn(|req, srv| {
            if let Some(hits) = req.app_data::<web::Data<Hits>>() {
                hits.0.fetch_add(1, Ordering::SeqCst);
            }
            let response = srv.call(req);
            async move {
                let mut response = response.await?;
                response.headers_mut().insert(
                    HeaderName::from_static("x-wrapped"),
                    HeaderValue::from_static("1"),
                );
                Ok(response)
            }
        })
}

#[test]
fn ops_pass_the_app_middleware_and_reach_scoped_routes_with_extractors() {
    let hits = web::Data::new(Hits::default());
    let shared = hits.clone();
    let server = TestServer::start(Config::default(), move || app(shared.clone()));

    let (status, body) = server.batch(json!([
        {"url": "/api/users/7/posts/hello?limit=3"},
        {"method": "POST", "url": "/echo", "body": {"a": [1, 2]}},
        {"url": "/api/users/x/posts/y?limit=3"},
        {"url": "/nowhere"},
    ]));
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], 200);
    assert_eq!(
        results[0]["body"],
        json!({"id": 7, "post": "hello", "limit": 3})
    );
    assert_eq!(
        results[1]["body"],
        json!({"a": [1, 2]}),
        "web::Json reads the op body"
    );
    assert_eq!(
        results[2]["status"], 404,
        "a path that fails to extract is actix's 404"
    );
    assert_eq!(results[3]["status"], 404);
    for result in results {
        assert_eq!(
            result["headers"]["x-wrapped"], "1",
            "wrap_fn runs on every op: {result}"
        );
    }
    // Four ops plus the batch request itself passed the middleware.
    assert_eq!(hits.0.load(Ordering::SeqCst), 5);
}

#[test]
fn web_data_created_outside_the_factory_is_shared_by_ops_on_every_worker() {
    let hits = web::Data::new(Hits::default());
    let shared = hits.clone();
    let server = TestServer::start(Config::default(), move || app(shared.clone()));
    for _ in 0..4 {
        server.batch(json!([{"url": "/api/hits"}]));
    }
    let (_, body) = server.batch(json!([{"url": "/api/hits"}]));
    // Each batch counts itself and its op; the op of the fifth batch sees the nine before it.
    assert_eq!(body["results"][0]["body"], json!({"hits": 10}));
}

#[test]
fn ops_see_the_callers_host_peer_and_credentials_and_their_batch_index() {
    let hits = web::Data::new(Hits::default());
    let server = TestServer::start(Config::default(), move || app(hits.clone()));
    let body =
        serde_json::to_vec(&json!({"ops": [{"url": "/api/hits"}, {"url": "/whoami"}]})).unwrap();
    let response = server.send(
        "POST",
        "/batch",
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer ada"),
        ],
        &body,
    );
    assert_eq!(response.status, 200);
    let whoami = &response.json()["results"][1]["body"];
    assert_eq!(
        *whoami,
        json!({
            "host": server.addr.to_string(),
            "peer": "127.0.0.1",
            "op": 1,
            "auth": "Bearer ada",
            "url_for": "/named",
        })
    );
}

#[test]
fn direct_requests_are_untouched_by_the_wrapper() {
    let hits = web::Data::new(Hits::default());
    let server = TestServer::start(Config::default(), move || app(hits.clone()));
    let response = server.send("GET", "/whoami", &[], b"");
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["op"], json!(null), "only ops carry BatchOp");
    let response = server.send("GET", "/batch", &[], b"");
    assert_eq!(response.status, 405, "the batch resource answers POST only");
}

#[test]
fn ops_run_concurrently_on_the_worker() {
    let server = TestServer::start(Config::default(), || {
        App::new().route(
            "/slow",
            web::get().to(|| async {
                actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
                HttpResponse::Ok().finish()
            }),
        )
    });
    let started = std::time::Instant::now();
    let (status, body) = server.batch(json!([{"url": "/slow"}, {"url": "/slow"}, {"url": "/slow"}, {"url": "/slow"}, {"url": "/slow"}]));
    let elapsed = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == 200)
    );
    assert!(
        elapsed < std::time::Duration::from_millis(900),
        "five 300 ms ops took {elapsed:?}"
    );
}

#[test]
fn an_error_from_app_middleware_answers_the_op_as_it_answers_a_direct_request() {
    let hits = web::Data::new(Hits::default());
    let server = TestServer::start(Config::default(), move || app(hits.clone()));
    let direct = server.send("GET", "/forbidden", &[], b"");
    let (status, body) = server.batch(json!([{"url": "/forbidden"}]));
    assert_eq!(status, 200);
    assert_eq!(direct.status, 403);
    assert_eq!(body["results"][0]["status"], 403);
    assert_eq!(
        body["results"][0]["body"],
        String::from_utf8(direct.body).unwrap()
    );
}
