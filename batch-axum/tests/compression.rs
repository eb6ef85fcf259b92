//! A compression layer inside the router answers ops uncompressed, since ops do not
//! inherit `accept-encoding`; one outside compresses the batch's answer as a whole.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::Read;

use axum::routing::get;
use axum::{Json, Router};
use batch_core::Config;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tower_http::compression::CompressionLayer;

/// A JSON document large enough for the compression layer to compress.
fn document() -> Value {
    json!({"items": (0..100).map(|i| format!("item-{i}")).collect::<Vec<_>>()})
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut plain)
        .unwrap();
    plain
}

#[tokio::test]
async fn ops_come_back_readable_and_the_batch_answer_compressed() {
    let app = Router::new()
        .route("/items", get(|| async { Json(document()) }))
        .layer(CompressionLayer::new());
    let app = batch_axum::with_batch(app, Config::default()).layer(CompressionLayer::new());
    let base = serve(app).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<axum::body::Bytes>>();

    // The inner layer compresses what a client that accepts gzip asks for directly.
    let direct = axum::http::Request::get(format!("{base}/items"))
        .header("accept-encoding", "gzip")
        .body(Full::default())
        .unwrap();
    let response = client.request(direct).await.unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");

    let batch = axum::http::Request::post(format!("{base}/batch"))
        .header("accept-encoding", "gzip")
        .header("content-type", "application/json")
        .body(Full::new(
            r#"{"ops": [{"url": "/items"}, {"url": "/items"}]}"#.into(),
        ))
        .unwrap();
    let response = client.request(batch).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-encoding"],
        "gzip",
        "the batch answer is compressed as a whole"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let answer: Value = serde_json::from_slice(&gunzip(&body)).unwrap();
    for result in answer["results"].as_array().unwrap() {
        assert_eq!(result["status"], 200);
        assert!(
            result["headers"].get("content-encoding").is_none(),
            "{result}"
        );
        assert_eq!(result["body"], document(), "the op's body is plain JSON");
    }
}
