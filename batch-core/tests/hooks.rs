//! Hooks: the application's own checks on whole batches and on each op.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use batch_core::{Config, Problem, Refusal};
use common::{Script, run, statuses};
use http::{StatusCode, header};
use serde_json::json;

/// A fixed-window limiter kept "elsewhere": `limit` requests per caller per window,
/// each charge a round trip that takes a while (as a call to Redis would), awaited
/// in the hook rather than blocking the batch's task.
fn limited(limit: u32) -> Config {
    let used = Arc::new(tokio::sync::Mutex::new(HashMap::<String, u32>::new()));
    Config::builder()
        .op_hook(move |op| {
            let caller = op.headers()[header::AUTHORIZATION]
                .to_str()
                .unwrap()
                .to_owned();
            let used = Arc::clone(&used);
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let mut used = used.lock().await;
                let count = used.entry(caller).or_default();
                *count += 1;
                if *count > limit {
                    return Err(
                        Refusal::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited").retry_after(60)
                    );
                }
                Ok(())
            }
        })
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_per_op_rate_limit_cannot_be_dodged_by_batching() {
    let script = Script::default();
    let ops: Vec<_> = (0..6)
        .map(|i| json!({"url": format!("/status/{}", 200 + i)}))
        .collect();
    let (status, body) = run(limited(5), &script, json!({"ops": ops, "sequential": true})).await;
    assert_eq!(status, 200);
    assert_eq!(statuses(&body), [200, 201, 202, 203, 204, 429]);
    assert_eq!(body["results"][5]["body"], json!({"error": "rate_limited"}));
    assert_eq!(body["results"][5]["headers"]["retry-after"], "60");
    assert_eq!(
        script.started.lock().unwrap().len(),
        5,
        "the refused op never ran"
    );
}

#[tokio::test]
async fn a_refused_op_fails_its_dependents() {
    let config = Config::builder()
        .op_hook(|op| {
            std::future::ready(match op.uri().path() {
                "/secret" => Err(Refusal::new(StatusCode::FORBIDDEN, "forbidden")),
                _ => Ok(()),
            })
        })
        .build()
        .unwrap();
    let ops = json!([{"id": "s", "url": "/secret"}, {"url": "/status/200", "depends_on": "s"}]);
    let (_, body) = run(config, &Script::default(), json!({"ops": ops})).await;
    assert_eq!(statuses(&body), [403, 424]);
}

#[tokio::test]
async fn a_batch_hook_sees_every_op_and_can_refuse_the_batch() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let config = Config::builder()
        .batch_hook(move |batch| {
            let mut seen = record.lock().unwrap();
            for op in batch.ops() {
                seen.push(format!("{} {} {}", op.id(), op.method(), op.uri()));
            }
            let verdict = match batch.ops().get(2) {
                Some(third) => Err(Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many for this caller",
                )
                .at_op(third.index())
                .retry_after(30)),
                None => Ok(()),
            };
            async move {
                tokio::task::yield_now().await;
                verdict
            }
        })
        .build()
        .unwrap();
    let script = Script::default();
    let ops = json!([{"id": "a", "url": "/status/200?x=1"}, {"method": "post", "url": "/e"}]);
    let (status, _) = run(config.clone(), &script, json!({"ops": ops})).await;
    assert_eq!(status, 200);
    assert_eq!(
        *seen.lock().unwrap(),
        ["a GET /status/200?x=1", "1 POST /e"]
    );
    let ops = json!([{"url": "/a"}, {"url": "/b"}, {"url": "/c"}]);
    let response = common::respond(config, &script, json!({"ops": ops})).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "30");
    let problem: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(problem["detail"], "too many for this caller");
    assert_eq!(problem["op"], 2, "the refusal points at the op it is about");
    assert_eq!(
        script.started.lock().unwrap().len(),
        2,
        "nothing of the refused batch ran"
    );
}

#[tokio::test]
async fn a_batch_hook_sees_the_outer_request_whole_and_the_ops_still_inherit_it() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let config = Config::builder()
        .batch_hook(move |batch| {
            let headers = &batch.outer().headers;
            let mut seen = record.lock().unwrap();
            for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
                seen.push(headers[&name].to_str().unwrap().to_owned());
            }
            std::future::ready(Ok(()))
        })
        .build()
        .unwrap();
    let ops = json!([{"url": "/echo/a"}, {"url": "/echo/b"}]);
    let (status, body) = run(config, &Script::default(), json!({"ops": ops})).await;
    assert_eq!(status, 200);
    assert_eq!(
        *seen.lock().unwrap(),
        ["Bearer outer", "application/json"],
        "the hook sees even the headers no op inherits"
    );
    for result in body["results"].as_array().unwrap() {
        let headers = &result["body"]["headers"];
        assert_eq!(headers["authorization"], "Bearer outer");
        assert_eq!(headers.get("content-type"), None);
    }
}

#[tokio::test]
async fn op_hooks_see_each_op_as_dispatched_and_run_in_order() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (first, second) = (Arc::clone(&seen), Arc::clone(&seen));
    let config = Config::builder()
        .op_hook(move |op| {
            first.lock().unwrap().push(format!(
                "first {} {} {} {}",
                op.index(),
                op.id(),
                op.uri(),
                op.headers()[header::AUTHORIZATION].to_str().unwrap()
            ));
            std::future::ready(Ok(()))
        })
        .op_hook(move |op| {
            second
                .lock()
                .unwrap()
                .push(format!("second {}", op.index()));
            std::future::ready(Ok(()))
        })
        .build()
        .unwrap();
    let ops = json!([{"id": "x", "url": "/e?q=1"}, {"url": "/e", "depends_on": "x"}]);
    let (_, body) = run(config, &Script::default(), json!({"ops": ops})).await;
    assert_eq!(statuses(&body), [200, 200]);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "first 0 x /e?q=1 Bearer outer",
            "second 0",
            "first 1 1 /e Bearer outer",
            "second 1"
        ]
    );
}

#[tokio::test]
async fn route_allowlists_and_denylists_refuse_the_batch_before_anything_runs() {
    let allow = Config::builder()
        .allow_routes(["/status/*", "/e"])
        .build()
        .unwrap();
    let script = Script::default();
    let (status, _) = run(
        allow.clone(),
        &script,
        json!({"ops": [{"url": "/status/200"}, {"url": "/e?q"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, problem) = run(
        allow,
        &script,
        json!({"ops": [{"url": "/e"}, {"url": "/admin"}]}),
    )
    .await;
    assert_eq!((status.as_u16(), problem["op"].as_u64()), (403, Some(1)));

    let deny = Config::builder().deny_routes(["/login"]).build().unwrap();
    let (status, _) = run(deny.clone(), &script, json!({"ops": [{"url": "/login"}]})).await;
    assert_eq!(status, 403);
    let (status, _) = run(deny, &script, json!({"ops": [{"url": "/login/help"}]})).await;
    assert_eq!(
        status, 200,
        "an exact pattern does not cover the paths below it"
    );
    assert_eq!(script.started.lock().unwrap().len(), 3);
}
