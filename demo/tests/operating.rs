//! The demo as an operator runs it: limits from flags and the environment, a bad
//! setting refused with exit code 2, each batch's id in its answer and in the log,
//! and `/metrics` (Prometheus text, scraped over HTTP) moving as batches run and
//! sockets open and close.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use common::{Demo, WAIT};

/// The value of every series of a Prometheus text scrape, by `name{labels}`.
struct Scrape(String);

impl Scrape {
    async fn of(demo: &Demo) -> Self {
        let response = demo
            .http
            .send("GET", "/metrics", &[], Bytes::new())
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        let content_type = response.headers["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        Self(String::from_utf8(response.body.to_vec()).unwrap())
    }

    /// The series' value; 0 for a series not there yet.
    fn value(&self, series: &str) -> f64 {
        self.0
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.parse().unwrap())
    }
}

/// `after - before` for each series.
fn moved(before: &Scrape, after: &Scrape, series: &[&str]) -> Vec<f64> {
    series
        .iter()
        .map(|s| after.value(s) - before.value(s))
        .collect()
}

fn json_headers() -> Vec<(String, String)> {
    vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("authorization".to_owned(), "Bearer ada".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_and_sockets_move_the_metrics_they_should() {
    let demo = Demo::start(
        "metrics",
        &["--max-ops", "4", "--facebook"],
        &[("BATCH_SOCKET_MAX_SUBSCRIPTIONS", "2")],
    );
    // A first batch puts the series there, each with its description.
    assert_eq!(demo.batch(json!([{"url": "/health"}])).await, [200]);
    let before = Scrape::of(&demo).await;
    for described in [
        "batch_requests_total",
        "batch_ops_total",
        "batch_op_duration_seconds",
    ] {
        let help = format!("# HELP {described} ");
        assert!(before.0.contains(&help), "{help}\n{}", before.0);
    }

    // A mixed batch: 201, 200, 404, and 424 for the op that depended on the 404.
    let mixed = json!({"ops": [
        {"method": "POST", "url": "/items", "body": {"name": "pen"}},
        {"url": "/whoami"},
        {"id": "gone", "url": "/items/999999"},
        {"url": "/health", "depends_on": "gone"},
    ]});
    let answer = demo
        .http
        .send(
            "POST",
            "/batch",
            &json_headers(),
            Bytes::from(mixed.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    let statuses: Vec<_> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 200, 404, 424]);
    // No x-request-id was sent: the batch's id is in the answer, and in the log.
    let id = answer.headers["x-batch-id"].to_str().unwrap().to_owned();
    demo.until_logged(&id, WAIT).await;

    // Refused: five ops over --max-ops 4 (limit), a nested batch (validation).
    let five = json!({"ops": [{"url": "/health"}, {"url": "/health"}, {"url": "/health"},
        {"url": "/health"}, {"url": "/health"}]});
    let nested = json!({"ops": [{"url": "/batch"}]});
    for (batch, status) in [(five, 413), (nested, 422)] {
        let (refused, problem) = demo.request("POST", "/batch", batch).await;
        assert_eq!(refused, status, "{problem}");
    }
    // The Facebook format, on through --facebook; the caller names this batch, so its
    // op is named after it and no x-batch-id comes back.
    let form = "batch=%5B%7B%22method%22%3A%22GET%22%2C%22relative_url%22%3A%22%2Fecho%22%7D%5D";
    let headers = [
        (
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("x-request-id".to_owned(), "trace-77".to_owned()),
    ];
    let facebook = demo
        .http
        .send(
            "POST",
            "/batch",
            &headers,
            Bytes::from_static(form.as_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(facebook.status, 200);
    assert!(!facebook.headers.contains_key("x-batch-id"));
    let results: Value = serde_json::from_slice(&facebook.body).unwrap();
    let echoed: Value = serde_json::from_str(results[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["headers"]["x-request-id"], "trace-77-0", "{echoed}");

    let after = Scrape::of(&demo).await;
    let http = |format: &str, outcome: &str| {
        format!(r#"batch_requests_total{{transport="http",format="{format}",outcome="{outcome}"}}"#)
    };
    let series = [
        http("native", "partial"),
        http("native", "refused"),
        http("facebook", "ok"),
        r#"batch_refusals_total{reason="limit"}"#.to_owned(),
        r#"batch_refusals_total{reason="validation"}"#.to_owned(),
        r#"batch_ops_total{status="2xx"}"#.to_owned(),
        r#"batch_ops_total{status="4xx"}"#.to_owned(),
        "batch_op_duration_seconds_count".to_owned(),
        "batch_duration_seconds_count".to_owned(),
        "batch_size_ops_count".to_owned(),
        "batch_size_ops_sum".to_owned(),
        "batch_ops_in_flight".to_owned(),
    ];
    let names: Vec<&str> = series.iter().map(String::as_str).collect();
    assert_eq!(
        moved(&before, &after, &names),
        // 2 refused; ops: 201, 200, 200 (echo) and 404, 424; 4 ran (not the 424);
        // 4 batches timed; 2 planned, of 4 and 1 ops; none running now.
        [1.0, 2.0, 1.0, 1.0, 1.0, 3.0, 2.0, 4.0, 4.0, 2.0, 5.0, 0.0],
        "{names:#?}\n{}",
        after.0
    );

    // A socket with two subscriptions (its limit, from BATCH_SOCKET_MAX_SUBSCRIPTIONS).
    let mut socket = demo.socket(&["/items/", "/items/1"]).await;
    socket
        .send(&json!({"type": "subscribe", "uri": "/items/2", "ref": "third"}))
        .await
        .unwrap();
    assert_eq!(socket.next(WAIT).await.unwrap()["status"], 429);
    let open = Scrape::of(&demo).await;
    assert_eq!(open.value("batch_sockets_open"), 1.0, "{}", open.0);
    assert_eq!(open.value("batch_subscriptions"), 2.0, "{}", open.0);
    let socket_batches = |outcome: &str| {
        open.value(&format!(
            r#"batch_requests_total{{transport="socket",format="native",outcome="{outcome}"}}"#
        ))
    };
    // The two subscriptions' reads; the upgrade's probe, a GET of /socket that the
    // routes answer 404 (which admits the socket).
    assert_eq!(
        (socket_batches("ok"), socket_batches("partial")),
        (2.0, 1.0)
    );
    socket.close(1000, "bye").await.unwrap();
    let start = Instant::now();
    loop {
        let closed = Scrape::of(&demo).await;
        if closed.value("batch_sockets_open") == 0.0 && closed.value("batch_subscriptions") == 0.0 {
            break;
        }
        assert!(start.elapsed() < WAIT, "still open:\n{}", closed.0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_bad_setting_is_refused_with_exit_code_2() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let output = Command::new(env!("CARGO_BIN_EXE_demo"))
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stderr)
    };
    let (code, stderr) = run(&["--max-ops", "lots"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--max-ops: wants a whole number"),
        "{stderr}"
    );
    let (code, stderr) = run(&[], &[("BATCH_OP_TIMEOUT", "soon")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("BATCH_OP_TIMEOUT: wants a duration"),
        "{stderr}"
    );
    let (code, stderr) = run(&["--max-concurrency", "0"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("max_concurrency must be at least 1"),
        "{stderr}"
    );

    let help = Command::new(env!("CARGO_BIN_EXE_demo"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let usage = String::from_utf8_lossy(&help.stdout);
    assert!(usage.contains("--max-ops N"), "{usage}");
    assert!(usage.contains("(env BATCH_MAX_OPS; default 50)"), "{usage}");
}
