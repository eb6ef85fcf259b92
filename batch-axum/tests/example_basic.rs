//! The `basic` example, started as it is written, answers a batch over real HTTP:
//! every op passes its authentication layer as the caller of the batch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

// The example's `main` goes unused here: the test starts `serve` itself.
#[allow(dead_code)]
#[path = "../examples/basic.rs"]
mod basic;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// POSTs `document` to `/batch`, as `user` if given; returns status and JSON body.
async fn post_batch(
    addr: std::net::SocketAddr,
    document: &str,
    user: Option<&str>,
) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = axum::http::Request::post(format!("http://{addr}/batch"))
        .header("content-type", "application/json");
    if let Some(user) = user {
        request = request.header("authorization", format!("Bearer {user}"));
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(document.as_bytes())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn a_batch_runs_through_the_example_app_as_its_caller() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(basic::serve(listener));

    // Without a token the batch is read and run, and the layer refuses every op: the
    // create never reaches its handler.
    let anonymous = r#"{"ops": [{"method": "POST", "url": "/notes", "body": {"text": "spam"}}, {"url": "/notes"}]}"#;
    let (status, answer) = post_batch(addr, anonymous, None).await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{answer}");
    for result in results {
        assert_eq!(result["status"], 401, "{result}");
        assert_eq!(result["headers"]["www-authenticate"], "Bearer", "{result}");
    }

    // The batch the example prints, as "ada": the note is hers, and it is note 1.
    let (status, answer) = post_batch(addr, basic::BATCH, Some("ada")).await;
    assert_eq!(status, 200, "{answer}");
    let note = json!({"id": 1, "text": "buy milk", "author": "ada"});
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{answer}");
    assert_eq!(results[0]["id"], "new");
    assert_eq!(results[0]["status"], 201, "{answer}");
    assert_eq!(results[0]["headers"]["location"], "/notes/1");
    assert_eq!(results[0]["body"], note);
    assert_eq!(results[1]["status"], 200, "{answer}");
    assert_eq!(results[1]["body"], note);
    assert_eq!(results[2]["status"], 200, "{answer}");
    assert_eq!(results[2]["body"], json!([note]));

    // Another caller's ops act as that caller: ada's note is not bob's to see.
    let bobs = r#"{"ops": [{"url": "/notes/1"}, {"url": "/notes"}]}"#;
    let (status, answer) = post_batch(addr, bobs, Some("bob")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["status"], 404, "{answer}");
    assert_eq!(answer["results"][1]["body"], json!([]), "{answer}");
}
