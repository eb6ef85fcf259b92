//! The `basic` example, started as it is written, answers a batch over real HTTP:
//! its authentication middleware runs on the batch and on every op, as the caller of
//! the batch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

// The example itself; the test starts its `serve`.
#[path = "../examples/basic.rs"]
mod basic;
mod support;

use serde_json::json;
use support::TestServer;

#[test]
fn a_batch_runs_through_the_example_app_as_its_caller() {
    let server = TestServer::serve(basic::serve);
    let json = [("content-type", "application/json")];

    // The middleware wraps the batch route too: without a token the batch is refused
    // as a whole, and no op runs (the create below is note 1).
    let anonymous = r#"{"ops": [{"method": "POST", "url": "/notes", "body": {"text": "spam"}}]}"#;
    let refused = server.send("POST", "/batch", &json, anonymous.as_bytes());
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        refused.json(),
        json!({"error": "a bearer token is required"})
    );

    // The batch the example prints, as "ada": each op passed the middleware with her
    // token, and the note is hers.
    let headers = [json[0], ("authorization", "Bearer ada")];
    let response = server.send("POST", "/batch", &headers, basic::BATCH.as_bytes());
    assert_eq!(response.status, 200);
    let answer = response.json();
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
    let headers = [json[0], ("authorization", "Bearer bob")];
    let bobs = r#"{"ops": [{"url": "/notes/1"}, {"url": "/notes"}]}"#;
    let response = server.send("POST", "/batch", &headers, bobs.as_bytes());
    assert_eq!(response.status, 200);
    let answer = response.json();
    assert_eq!(answer["results"][0]["status"], 404, "{answer}");
    assert_eq!(answer["results"][1]["body"], json!([]), "{answer}");
}
