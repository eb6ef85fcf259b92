//! How a batch runs: concurrency, order, dependencies, failures, time and cancellation.
//!
//! The clock is paused (`start_paused`), so elapsed times are exact virtual times.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use batch_core::{BatchEndpoint, Config, ExecuteError, Executor};
use bytes::Bytes;
use common::{Script, batch_request, run, statuses};
use http::{Request, Response};
use serde_json::json;
use tokio::time::Instant;

fn sleeps(n: usize, ms: u64) -> Vec<serde_json::Value> {
    (0..n)
        .map(|_| json!({"url": format!("/sleep/{ms}")}))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn independent_ops_run_concurrently_up_to_the_limit() {
    let started = Instant::now();
    let (status, body) = run(
        Config::default(),
        &Script::default(),
        json!({"ops": sleeps(10, 200)}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(statuses(&body), vec![200; 10]);
    assert_eq!(started.elapsed(), Duration::from_millis(200));

    let config = Config::builder().max_concurrency(4).build().unwrap();
    let started = Instant::now();
    run(config, &Script::default(), json!({"ops": sleeps(10, 200)})).await;
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(600),
        "10 ops, 4 at a time"
    );
}

#[tokio::test(start_paused = true)]
async fn sequential_runs_one_at_a_time_in_request_order() {
    let script = Script::default();
    let ops = json!([{"url": "/sleep/30"}, {"url": "/sleep/10"}, {"url": "/sleep/20"}]);
    let started = Instant::now();
    run(
        Config::default(),
        &script,
        json!({"ops": ops, "sequential": true}),
    )
    .await;
    assert_eq!(started.elapsed(), Duration::from_millis(60));
    assert_eq!(
        *script.finished.lock().unwrap(),
        ["/sleep/30", "/sleep/10", "/sleep/20"]
    );
}

#[tokio::test(start_paused = true)]
async fn results_keep_request_order_whatever_the_finish_order() {
    let script = Script::default();
    let ops = json!([{"id": "slow", "url": "/sleep/50"}, {"id": "fast", "url": "/sleep/1"}]);
    let (_, body) = run(Config::default(), &script, json!({"ops": ops})).await;
    assert_eq!(body["results"][0]["id"], "slow");
    assert_eq!(body["results"][1]["id"], "fast");
    assert_eq!(*script.finished.lock().unwrap(), ["/sleep/1", "/sleep/50"]);
}

#[tokio::test(start_paused = true)]
async fn dependents_wait_and_a_chain_takes_its_critical_path() {
    let script = Script::default();
    let ops = json!([
        {"id": "c", "url": "/sleep/10", "depends_on": ["b"]},
        {"id": "a", "url": "/sleep/10"},
        {"id": "b", "url": "/sleep/10", "depends_on": "a"},
        {"id": "free", "url": "/sleep/25"}
    ]);
    let started = Instant::now();
    let (_, body) = run(Config::default(), &script, json!({"ops": ops})).await;
    assert_eq!(statuses(&body), [200, 200, 200, 200]);
    assert_eq!(started.elapsed(), Duration::from_millis(30));
    let finished = script.finished.lock().unwrap().clone();
    let position = |p: &str| finished.iter().position(|f| f == p).unwrap();
    assert!(
        position("/sleep/25") < finished.len() - 1,
        "independent op ran alongside the chain"
    );
}

#[tokio::test]
async fn ops_that_start_after_a_cascade_of_424s_still_inherit_the_outer_headers() {
    // The ops answered 424 never start: the last op that does start is the one
    // after them, and it, like every other, is given the outer identity and its
    // own request id.
    let ops = json!([
        {"id": "bad", "url": "/status/500"},
        {"id": "child", "url": "/never/child", "depends_on": "bad"},
        {"id": "grandchild", "url": "/never/grandchild", "depends_on": "child"},
        {"id": "after", "url": "/e/after", "if": "not $bad/$succeeded"},
        {"id": "last", "url": "/e/last"},
    ]);
    let request = common::batch_request(&json!({"ops": ops, "sequential": true}));
    let (mut parts, body) = request.into_parts();
    parts
        .headers
        .insert("x-request-id", "outer-1".parse().unwrap());
    let response = BatchEndpoint::new(Config::default())
        .handle(&Script::default(), Request::from_parts(parts, body))
        .await;
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(statuses(&body), [500, 424, 424, 200, 200]);
    for (index, op) in [(3, "after"), (4, "last")] {
        let headers = &body["results"][index]["body"]["headers"];
        assert_eq!(headers["authorization"], "Bearer outer", "{op}");
        assert_eq!(headers["x-request-id"], format!("outer-1-{index}"), "{op}");
    }
}

#[tokio::test]
async fn a_batch_without_a_request_id_is_answered_with_the_id_its_ops_are_named_after() {
    let endpoint = BatchEndpoint::new(Config::default());
    let ops = json!([{"url": "/e/a"}, {"url": "/e/b"}]);
    let response = endpoint
        .handle(&Script::default(), batch_request(&json!({"ops": ops})))
        .await;
    let id = response.headers()["x-batch-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    for index in 0..2 {
        let headers = &body["results"][index]["body"]["headers"];
        assert_eq!(headers["x-request-id"], format!("{id}-{index}"));
    }
    // A batch refused before it was planned is named all the same, by a new id.
    let refused = endpoint
        .handle(&Script::default(), batch_request(&json!({"ops": "none"})))
        .await;
    assert_eq!(refused.status(), 400);
    let other = refused.headers()["x-batch-id"].to_str().unwrap();
    assert!(!other.is_empty() && other != id);
}

#[tokio::test]
async fn dependents_of_a_failure_get_424_transitively_and_do_not_run() {
    let script = Script::default();
    let ops = json!([
        {"id": "ok", "url": "/status/200"},
        {"id": "bad", "url": "/status/500"},
        {"id": "child", "url": "/never/child", "depends_on": ["ok", "bad"]},
        {"id": "grandchild", "url": "/never/grandchild", "depends_on": "child"}
    ]);
    let (_, body) = run(Config::default(), &script, json!({"ops": ops})).await;
    assert_eq!(statuses(&body), [200, 500, 424, 424]);
    assert_eq!(
        body["results"][2]["body"],
        json!({"error": "dependency_failed", "dependency": "bad"})
    );
    assert_eq!(
        body["results"][3]["body"],
        json!({"error": "dependency_failed", "dependency": "child"})
    );
    assert_eq!(
        body["results"][2]["headers"]["content-type"],
        "application/json"
    );
    assert!(
        script
            .started
            .lock()
            .unwrap()
            .iter()
            .all(|p| !p.starts_with("/never"))
    );
}

#[tokio::test]
async fn the_first_failed_dependency_in_list_order_is_named() {
    let ops = json!([
        {"id": "late", "url": "/status/404"},
        {"id": "early", "url": "/status/500"},
        {"url": "/x", "depends_on": ["early", "late"]}
    ]);
    let (_, body) = run(Config::default(), &Script::default(), json!({"ops": ops})).await;
    assert_eq!(body["results"][2]["body"]["dependency"], "early");
}

#[tokio::test]
async fn on_error_stop_halts_ops_not_yet_started() {
    let script = Script::default();
    let ops = json!([{"url": "/status/200"}, {"url": "/status/503"}, {"url": "/never/1"}, {"url": "/never/2"}]);
    let (_, body) = run(
        Config::default(),
        &script,
        json!({"ops": ops, "sequential": true, "on_error": "stop"}),
    )
    .await;
    assert_eq!(statuses(&body), [200, 503, 424, 424]);
    assert_eq!(body["results"][3]["body"], json!({"error": "batch_halted"}));
    assert_eq!(script.started.lock().unwrap().len(), 2);

    let (_, body) = run(
        Config::default(),
        &Script::default(),
        json!({"ops": [{"url": "/status/503"}, {"url": "/status/200"}], "sequential": true}),
    )
    .await;
    assert_eq!(statuses(&body), [503, 200], "continue is the default");
}

#[tokio::test(start_paused = true)]
async fn op_timeouts_answer_504_and_never_exceed_the_server_maximum() {
    let config = Config::builder()
        .op_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let ops = json!([
        {"url": "/sleep/1000", "timeout_ms": 100},
        {"url": "/sleep/1000", "timeout_ms": 60000},
        {"url": "/sleep/50", "timeout_ms": 100}
    ]);
    let started = Instant::now();
    let (_, body) = run(config, &Script::default(), json!({"ops": ops})).await;
    assert_eq!(statuses(&body), [504, 504, 200]);
    assert_eq!(body["results"][0]["body"], json!({"error": "timeout"}));
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(300),
        "timeout_ms cannot raise the cap"
    );
}

#[tokio::test(start_paused = true)]
async fn the_batch_deadline_answers_504_for_everything_unfinished() {
    let config = Config::builder()
        .batch_deadline(Duration::from_millis(100))
        .max_concurrency(1)
        .build()
        .unwrap();
    let script = Script::default();
    let ops = json!([{"url": "/sleep/60"}, {"url": "/sleep/60"}, {"url": "/sleep/60"}]);
    let started = Instant::now();
    let (_, body) = run(config, &script, json!({"ops": ops})).await;
    assert_eq!(statuses(&body), [200, 504, 504]);
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    assert_eq!(
        script.started.lock().unwrap().len(),
        2,
        "nothing starts after the deadline"
    );
}

#[tokio::test]
async fn a_panicking_op_is_a_500_without_its_message_and_the_others_finish() {
    let ops = json!([{"url": "/status/201"}, {"url": "/panic"}, {"url": "/status/202"}]);
    let (status, body) = run(Config::default(), &Script::default(), json!({"ops": ops})).await;
    assert_eq!(status, 200);
    assert_eq!(statuses(&body), [201, 500, 202]);
    assert_eq!(body["results"][1]["body"], json!({"error": "internal"}));
    assert!(!body.to_string().contains("secret"));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_batch_cancels_running_ops_and_starts_no_new_one() {
    let script = Script::default();
    let endpoint = BatchEndpoint::new(Config::default());
    let ops: Vec<_> = (0..5)
        .map(|i| json!({"url": format!("/sleep/{}", 100 * (i + 1))}))
        .collect();
    let request = batch_request(&json!({"ops": ops, "sequential": true}));
    let batch = endpoint.handle(&script, request);
    // The client goes away while the second op runs.
    let outcome = tokio::time::timeout(Duration::from_millis(150), batch).await;
    assert!(outcome.is_err());
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        *script.started.lock().unwrap(),
        ["/sleep/100", "/sleep/200"]
    );
    assert_eq!(*script.finished.lock().unwrap(), ["/sleep/100"]);
}

#[tokio::test]
async fn oversized_op_responses_are_502() {
    let config = Config::builder().max_response_body(10).build().unwrap();
    let ops = json!([{"url": "/big/10"}, {"url": "/big/11"}]);
    let (_, body) = run(config, &Script::default(), json!({"ops": ops})).await;
    assert_eq!(statuses(&body), [200, 502]);
    assert_eq!(
        body["results"][1]["body"],
        json!({"error": "response_too_large"})
    );
}

#[tokio::test(start_paused = true)]
async fn a_buffered_answer_past_the_whole_batch_cap_answers_the_rest_507_and_cancels_them() {
    let config = Config::builder().max_batch_response(300).build().unwrap();
    let script = Script::default();
    // Finishing in order, 100-byte bodies and sleeps of about 45 bytes (body and
    // content-type): the third 100 bytes, at 20 ms, take the results past 300.
    let ops = json!([
        {"url": "/big/100"},
        {"url": "/sleep/10"},
        {"url": "/big/100", "depends_on": "1"},
        {"url": "/sleep/20"},
        {"url": "/big/100", "depends_on": "3"},
        {"url": "/sleep/1000"},
        {"url": "/big/1", "depends_on": "5"}
    ]);
    let (status, body) = run(config, &script, json!({"ops": ops})).await;
    assert_eq!(status, 200);
    assert_eq!(statuses(&body), [200, 200, 200, 200, 507, 507, 507]);
    assert_eq!(
        body["results"][5]["body"],
        json!({"error": "batch_response_too_large"})
    );
    assert_eq!(body["results"][4]["id"], "4");
    assert_eq!(body["results"][5]["id"], "5");
    let finished = script.finished.lock().unwrap().clone();
    assert!(
        !finished.contains(&"/sleep/1000".to_owned()),
        "the op still running is cancelled: {finished:?}"
    );
    assert!(!finished.contains(&"/big/1".to_owned()), "{finished:?}");
}

/// Runs `batch` as a request to the endpoint (its native answer written as the
/// results come) and through `BatchEndpoint::run` (the results collected, then
/// encoded), each with a fresh script, and asserts the two answers are the same
/// bytes. The batch is named, so that the ops' request ids are the same in both.
async fn written_as_collected(config: Config, batch: serde_json::Value) -> serde_json::Value {
    let endpoint = BatchEndpoint::new(config);
    let request = || {
        let mut request = batch_request(&batch);
        let name = http::HeaderValue::from_static("compared");
        request.headers_mut().insert("x-request-id", name);
        request
    };
    let written = endpoint.handle(&Script::default(), request()).await;
    assert_eq!(written.status(), 200, "{batch}");
    let (parts, body) = request().into_parts();
    let body = http_body_util::BodyExt::collect(body)
        .await
        .unwrap()
        .to_bytes();
    let decoded = batch_core::decode(&parts, &body, endpoint.config()).unwrap();
    let collected = endpoint
        .run(&Script::default(), &parts, decoded)
        .await
        .unwrap();
    let encoded = batch_core::encode(&collected, batch_core::Format::Native);
    assert_eq!(
        written.body(),
        encoded.body(),
        "written and collected differ for {batch}"
    );
    serde_json::from_slice(written.body()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_native_answer_written_as_results_come_is_the_collected_one() {
    let capped = || Config::builder().max_batch_response(300).build().unwrap();
    let cases = [
        // In request order, every kind of body.
        (
            Config::default(),
            json!({"ops": [
                {"url": "/status/201"}, {"url": "/text"}, {"url": "/binary"},
                {"url": "/big/3"}, {"url": "/echo", "method": "POST", "body": {"a": 1}}
            ]}),
            vec![201, 200, 200, 200, 200],
        ),
        // Finishing out of order: early results wait for the ones before them.
        (
            Config::default(),
            json!({"ops": [
                {"id": "a", "url": "/sleep/50"}, {"id": "b", "url": "/sleep/10"},
                {"id": "c", "url": "/status/404"}, {"id": "d", "url": "/sleep/30"},
                {"id": "e", "url": "/sleep/50"}
            ]}),
            vec![200, 200, 404, 200, 200],
        ),
        // Silent ops: a success is its id and status alone, a failure is whole.
        (
            Config::default(),
            json!({"ops": [
                {"url": "/sleep/20", "silent": true}, {"url": "/status/500", "silent": true},
                {"url": "/text", "silent": true}, {"url": "/text"}
            ]}),
            vec![200, 500, 200, 200],
        ),
        // Without headers.
        (
            Config::default(),
            json!({"include_headers": false, "ops": [
                {"url": "/sleep/10"}, {"url": "/text"}, {"url": "/status/503"}
            ]}),
            vec![200, 200, 503],
        ),
        // A failed dependency: its dependents answered 424 in the same step, one
        // before an op still running.
        (
            Config::default(),
            json!({"ops": [
                {"id": "slow", "url": "/sleep/30"},
                {"id": "first", "url": "/status/500"},
                {"id": "second", "url": "/text", "depends_on": "first"},
                {"id": "third", "url": "/text", "depends_on": "second"},
                {"id": "fourth", "url": "/sleep/5", "depends_on": "slow"}
            ]}),
            vec![200, 500, 424, 424, 200],
        ),
        // A HEAD (no body whatever the handler sent), a result another op refers
        // to, a panic and a body over the op's limit.
        (
            Config::builder().max_response_body(50).build().unwrap(),
            json!({"ops": [
                {"id": "h", "url": "/status/200", "method": "HEAD"},
                {"id": "r", "url": "/status/201"},
                {"url": "/x/{result=r:$.missing}"},
                {"id": "u", "url": "/sleep/5"},
                {"url": "/big/{result=u:$.slept}"},
                {"url": "/panic"}, {"url": "/big/51"}, {"url": "/big/50"}
            ]}),
            vec![200, 201, 424, 200, 200, 500, 502, 200],
        ),
        // Halted by a failure.
        (
            Config::default(),
            json!({"on_error": "stop", "sequential": true, "ops": [
                {"url": "/status/200"}, {"url": "/status/503"}, {"url": "/text"}
            ]}),
            vec![200, 503, 424],
        ),
        // Over the whole-batch cap in request order: the rest are 507, the op
        // still running cancelled.
        (
            capped(),
            json!({"ops": [
                {"url": "/big/100"}, {"url": "/sleep/10"},
                {"url": "/big/100", "depends_on": "1"}, {"url": "/sleep/20"},
                {"url": "/big/100", "depends_on": "3"}, {"url": "/sleep/1000"},
                {"url": "/big/1", "depends_on": "5"}
            ]}),
            vec![200, 200, 200, 200, 507, 507, 507],
        ),
        // Over the cap with results waiting for an earlier one that never comes:
        // those that came before the cap was reached are answered as they came,
        // the ops still running 507.
        (
            capped(),
            json!({"ops": [
                {"id": "never", "url": "/sleep/1000"},
                {"id": "early", "url": "/big/100"},
                {"id": "cut", "url": "/sleep/10"},
                {"id": "later", "url": "/sleep/1"},
                {"id": "past", "url": "/big/250", "depends_on": "later"},
                {"id": "gone", "url": "/sleep/500"}
            ]}),
            vec![507, 200, 507, 200, 507, 507],
        ),
    ];
    for (config, batch, expected) in cases {
        let answer = written_as_collected(config, batch.clone()).await;
        let statuses: Vec<u64> = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_u64().unwrap())
            .collect();
        assert_eq!(statuses, expected, "{batch}");
    }
}

#[tokio::test]
async fn results_past_the_whole_batch_cap_keep_their_ops_ids() {
    // The failed op's result alone is over the cap, and its dependent's 424 comes
    // in the same step: both are answered 507, each under its own id.
    let config = Config::builder().max_batch_response(1).build().unwrap();
    let ops = json!([
        {"id": "first", "url": "/status/500"},
        {"id": "second", "url": "/big/1", "depends_on": "first"},
        {"id": "third", "url": "/big/1", "depends_on": "second"}
    ]);
    let (status, body) = run(config, &Script::default(), json!({"ops": ops})).await;
    assert_eq!(status, 200);
    assert_eq!(statuses(&body), [507, 507, 507]);
    let ids: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["first", "second", "third"]);
}

#[tokio::test(start_paused = true)]
async fn batches_beyond_the_in_flight_cap_get_503_with_retry_after() {
    let config = Config::builder().max_in_flight(4).build().unwrap();
    let endpoint = BatchEndpoint::new(config);
    let script = Script::default();
    let first = endpoint.handle(&script, batch_request(&json!({"ops": sleeps(3, 100)})));
    let second = endpoint.handle(&script, batch_request(&json!({"ops": sleeps(2, 100)})));
    let third = async {
        // Starts after the other two hold their permits.
        tokio::time::sleep(Duration::from_millis(10)).await;
        endpoint
            .handle(&script, batch_request(&json!({"ops": sleeps(1, 100)})))
            .await
    };
    let (first, second, third) = tokio::join!(first, second, third);
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 503);
    assert_eq!(second.headers()["retry-after"], "1");
    assert_eq!(second.headers()["content-type"], "application/problem+json");
    assert_eq!(third.status(), 200, "3 + 1 ops fit in a cap of 4");
    let after = endpoint
        .handle(&script, batch_request(&json!({"ops": sleeps(4, 1)})))
        .await;
    assert_eq!(after.status(), 200, "permits come back when a batch ends");
}

#[tokio::test]
async fn a_batch_arriving_as_an_op_of_another_batch_is_refused() {
    let marker = op_marker().await;
    assert_eq!(marker.index(), 0);
    let mut request = batch_request(&json!({"ops": [{"url": "/x"}]}));
    request.extensions_mut().insert(marker);
    let endpoint = BatchEndpoint::new(Config::default());
    let response = endpoint.handle(&Script::default(), request).await;
    assert_eq!(response.status(), 422);
}

/// The marker the engine puts on every op request, as a handler sees it.
async fn op_marker() -> batch_core::BatchOp {
    use std::sync::Mutex;
    struct Capture(Mutex<Option<batch_core::BatchOp>>);
    impl batch_core::Executor for Capture {
        async fn execute(
            &self,
            request: http::Request<bytes::Bytes>,
            _max_response_body: usize,
        ) -> Result<http::Response<bytes::Bytes>, batch_core::ExecuteError> {
            *self.0.lock().unwrap() = request.extensions().get::<batch_core::BatchOp>().copied();
            Ok(http::Response::new(bytes::Bytes::new()))
        }
    }
    let capture = Capture(Mutex::new(None));
    let endpoint = BatchEndpoint::new(Config::default());
    endpoint
        .handle(&capture, batch_request(&json!({"ops": [{"url": "/a"}]})))
        .await;
    capture.0.lock().unwrap().take().unwrap()
}

/// Records, for each op it answers at once, whether another task has run yet.
struct Watch {
    other_ran: Arc<AtomicBool>,
    seen: Mutex<Vec<bool>>,
}

impl Executor for Watch {
    async fn execute(
        &self,
        _request: Request<Bytes>,
        _max_response_body: usize,
    ) -> Result<Response<Bytes>, ExecuteError> {
        let ran = self.other_ran.load(Ordering::SeqCst);
        self.seen.lock().unwrap().push(ran);
        Ok(Response::new(Bytes::new()))
    }
}

#[tokio::test]
async fn a_large_batch_of_instant_ops_still_lets_other_tasks_run() {
    // Ops that answer on their first poll run on the batch's own task, one after
    // another; on a one-thread runtime, nothing else would run until the batch ends.
    let other_ran = Arc::new(AtomicBool::new(false));
    let flag = other_ran.clone();
    tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
    let watch = Watch {
        other_ran,
        seen: Mutex::new(Vec::new()),
    };
    let ops: Vec<_> = (0..1000).map(|i| json!({"url": format!("/{i}")})).collect();
    let endpoint = BatchEndpoint::new(Config::builder().max_ops(1000).build().unwrap());
    let response = endpoint
        .handle(&watch, batch_request(&json!({ "ops": ops })))
        .await;
    assert_eq!(response.status(), 200);
    let seen = watch.seen.into_inner().unwrap();
    assert_eq!(seen.len(), 1000);
    assert!(!seen[0], "the other task waits for the batch's first yield");
    assert!(
        seen[999],
        "the batch yielded to the runtime before its last op"
    );
}

#[tokio::test(start_paused = true)]
async fn timeouts_past_what_a_clock_holds_are_deadlines_that_never_come() {
    let config = Config::builder()
        .op_timeout(Duration::MAX)
        .batch_deadline(Duration::MAX)
        .build()
        .unwrap();
    let ops = json!([
        {"url": "/sleep/10"},
        {"url": "/sleep/10", "timeout_ms": u64::MAX}
    ]);
    let (status, body) = run(config, &Script::default(), json!({"ops": ops})).await;
    assert_eq!(status, 200);
    assert_eq!(statuses(&body), [200, 200]);
}

/// Answers every op with a JSON body and headers of its own.
struct Tagged;

impl Executor for Tagged {
    async fn execute(
        &self,
        _request: Request<Bytes>,
        _max_response_body: usize,
    ) -> Result<Response<Bytes>, ExecuteError> {
        Ok(Response::builder()
            .header("content-type", "text/x-other+json")
            .header("x-op", "mine")
            .header("set-cookie", "a=1")
            .body(Bytes::from_static(b"[1]"))
            .unwrap())
    }
}

#[tokio::test]
async fn the_answer_has_its_own_headers_whatever_the_ops_answered() {
    for ops in [1, 3] {
        let batch = json!({"ops": sleeps(ops, 0)});
        let response = BatchEndpoint::new(Config::default())
            .handle(&Tagged, batch_request(&batch))
            .await;
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        let content_types: Vec<_> = headers.get_all("content-type").iter().collect();
        assert_eq!(content_types, ["application/json"], "{ops} ops");
        assert!(!headers.contains_key("x-op"), "{ops} ops: {headers:?}");
        assert!(
            !headers.contains_key("set-cookie"),
            "{ops} ops: {headers:?}"
        );
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["results"][ops - 1]["headers"]["x-op"], "mine");
    }
}

/// Answers every op with JSON and no header but its content type, which may be
/// marked sensitive.
struct JsonAlone {
    sensitive: bool,
}

impl Executor for JsonAlone {
    async fn execute(
        &self,
        _request: Request<Bytes>,
        _max_response_body: usize,
    ) -> Result<Response<Bytes>, ExecuteError> {
        let mut content_type = http::HeaderValue::from_static("application/json");
        content_type.set_sensitive(self.sensitive);
        let mut response = Response::new(Bytes::from_static(b"[1]"));
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, content_type);
        Ok(response)
    }
}

#[tokio::test]
async fn an_answer_after_ops_that_answered_its_own_content_type_alone_has_just_its_own() {
    for (ops, sensitive) in [(1, false), (3, false), (1, true)] {
        let batch = json!({"ops": sleeps(ops, 0)});
        let response = BatchEndpoint::new(Config::default())
            .handle(&JsonAlone { sensitive }, batch_request(&batch))
            .await;
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        let names: Vec<_> = headers.keys().map(http::HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "x-batch-id"], "{ops} ops");
        let content_type = &headers["content-type"];
        assert_eq!(content_type, "application/json");
        assert!(
            !content_type.is_sensitive(),
            "{ops} ops, sensitive {sensitive}"
        );
        assert_eq!(headers.len(), 2, "{headers:?}");
    }
}
