//! What an op's extractors see: its own route, and the outer request's extensions.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use axum::extract::{Extension, MatchedPath, OriginalUri};
use axum::routing::get;
use axum::{Json, Router, middleware};
use batch_core::Config;
use serde_json::{Value, json};

#[derive(Clone)]
struct CurrentUser(&'static str);

async fn post_batch(app: Router, ops: Value) -> Value {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let body = serde_json::to_vec(&json!({ "ops": ops })).unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /batch HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = stream;
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8(response).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn ops_see_their_own_matched_path_and_original_uri() {
    let app = Router::new().route(
        "/matched/{x}",
        get(
            |matched: MatchedPath, OriginalUri(uri): OriginalUri| async move {
                Json(json!({"matched": matched.as_str(), "original": uri.to_string()}))
            },
        ),
    );
    let app = batch_axum::with_batch(app, Config::default());
    let results = post_batch(app, json!([{"url": "/matched/7?q=1"}])).await;
    assert_eq!(
        results["results"][0]["body"],
        json!({"matched": "/matched/{x}", "original": "/matched/7?q=1"})
    );
}

#[tokio::test]
async fn outer_extensions_reach_every_op_and_inner_layers_run_per_op() {
    let app =
        Router::new()
            .route(
                "/me",
                get(|Extension(user): Extension<CurrentUser>| async move {
                    Json(json!({"user": user.0}))
                }),
            )
            .layer(middleware::from_fn(
                |req: axum::extract::Request, next: middleware::Next| async move {
                    let mut response = next.run(req).await;
                    response
                        .headers_mut()
                        .insert("x-inner", "1".parse().unwrap());
                    response
                },
            ));
    let app = batch_axum::with_batch(app, Config::default()).layer(Extension(CurrentUser("ada")));
    let results = post_batch(app, json!([{"url": "/me"}, {"url": "/me"}])).await;
    for result in results["results"].as_array().unwrap() {
        assert_eq!(result["body"], json!({"user": "ada"}));
        assert_eq!(
            result["headers"]["x-inner"], "1",
            "layers before with_batch run per op"
        );
    }
}
