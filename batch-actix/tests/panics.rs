//! An op that panics is that op's 500; the worker goes on serving.

mod support;

use actix_web::{App, HttpResponse, web};
use batch_core::Config;
use serde_json::json;
use support::TestServer;

#[test]
fn a_panicking_op_is_answered_500_and_every_worker_keeps_serving() {
    let server = TestServer::start(Config::default(), || {
        App::new()
            .route("/ok", web::get().to(HttpResponse::Ok))
            .route(
                "/panic",
                web::get().to(|| async {
                    if true {
                        panic!("handler failed");
                    }
                    HttpResponse::Ok().finish()
                }),
            )
    });
    for _ in 0..4 {
        let (status, body) = server.batch(json!([
            {"url": "/ok"}, {"url": "/panic"}, {"url": "/ok"}
        ]));
        assert_eq!(status, 200, "{body}");
        let statuses: Vec<_> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].clone())
            .collect();
        assert_eq!(statuses, [200, 500, 200]);
        assert_eq!(body["results"][1]["body"], json!({"error": "internal"}));
    }
    // Connections land on both workers; each still answers.
    for _ in 0..4 {
        assert_eq!(server.send("GET", "/ok", &[], b"").status, 200);
    }
}
