//! The `basic` example, started as it is written, answers a batch over real HTTP:
//! every op passes its authentication filter as the caller of the batch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

// The example's `main` goes unused here: the test starts `serve` itself.
#[allow(dead_code)]
#[path = "../examples/basic.rs"]
mod basic;
mod common;

use serde_json::{Value, json};

#[tokio::test]
async fn a_batch_runs_through_the_example_app_as_its_caller() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(basic::serve(listener));

    // Without a token the batch is read and run, and the filter refuses every op:
    // the create never reaches its handler.
    let anonymous = json!({"ops": [
        {"method": "POST", "url": "/notes", "body": {"text": "spam"}},
        {"url": "/notes"},
    ]});
    let answer = common::post_batch(addr, &anonymous, "").await;
    assert_eq!(answer.status, 200);
    let answer = answer.json();
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{answer}");
    for result in results {
        assert_eq!(result["status"], 401, "{result}");
        assert_eq!(result["headers"]["www-authenticate"], "Bearer", "{result}");
    }

    // The batch the example prints, as "ada": the note is hers, and it is note 1.
    let batch: Value = serde_json::from_str(basic::BATCH).unwrap();
    let answer = common::post_batch(addr, &batch, "\r\nauthorization: Bearer ada").await;
    assert_eq!(answer.status, 200);
    let answer = answer.json();
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
    let bobs = json!({"ops": [{"url": "/notes/1"}, {"url": "/notes"}]});
    let answer = common::post_batch(addr, &bobs, "\r\nauthorization: Bearer bob").await;
    assert_eq!(answer.status, 200);
    let answer = answer.json();
    assert_eq!(answer["results"][0]["status"], 404, "{answer}");
    assert_eq!(answer["results"][1]["body"], json!([]), "{answer}");
}
