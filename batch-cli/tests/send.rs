//! The `batch` binary against the fixture servers of every framework, over real
//! HTTP: what an operator sees on stdout, stderr and in the exit status.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use batch_core::Config;
use fixture::{Framework, Server};
use serde_json::{Value, json};

/// A fixture server of `framework` on a free port, and its batch URL.
fn serve(framework: Framework, config: Config) -> (Server, String) {
    let server = framework
        .start(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .expect("the fixture server starts");
    let url = format!("{}/batch", server.url());
    (server, url)
}

/// Runs `batch` with `args`, `input` on its standard input.
fn batch(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_batch"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the batch binary runs");
    let written = child.stdin.take().unwrap().write_all(input.as_bytes());
    // A command refused for its arguments exits before it reads its input.
    if let Err(err) = written {
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
    }
    child.wait_with_output().unwrap()
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_thousand_ops_from_a_file_with_a_dependency_pair_across_a_split_boundary() {
    // Ops 49 and 50 are tied, and 50 ops per batch would part them.
    let mut ops: Vec<Value> = (0..1000)
        .map(|i| json!({"url": format!("/items/{}", i + 1)}))
        .collect();
    ops[49] =
        json!({"id": "new", "method": "POST", "url": "/items", "body": {"name": "from a file"}});
    ops[50] = json!({"url": "/health", "depends_on": ["new"]});
    let file = std::env::temp_dir().join(format!("batch-cli-{}.jsonl", std::process::id()));
    let text: String = ops.iter().map(|op| format!("{op}\n")).collect();
    std::fs::write(&file, text).unwrap();
    for framework in Framework::ALL {
        let (_server, url) = serve(framework, Config::default());
        let output = batch(&["send", "--url", &url, file.to_str().unwrap()], "");
        let name = framework.name();
        assert_eq!(output.status.code(), Some(0), "{name}: {}", stderr(&output));
        let results = lines(&output);
        assert_eq!(results.len(), 1000, "{name}");
        for (i, result) in results.iter().enumerate() {
            assert_eq!(result["index"], i, "{name}: in input order");
            match i {
                49 => {
                    assert_eq!(result["id"], "new");
                    assert_eq!(result["status"], 201, "{name}");
                    assert_eq!(result["body"]["name"], "from a file");
                }
                50 => {
                    assert_eq!(result["status"], 200, "{name}: ran after its dependency");
                    assert_eq!(result["body"], json!({"ok": true}));
                }
                _ => {
                    assert_eq!(result["id"], i.to_string());
                    assert_eq!(result["status"], 200, "{name}: {result}");
                    assert_eq!(result["body"]["id"], i + 1, "{name}");
                }
            }
        }
    }
    std::fs::remove_file(file).unwrap();
}

#[test]
fn a_429_storm_is_retried_to_success() {
    let ops: String = (0..60)
        .map(|i| format!("{}\n", json!({"url": format!("/flaky/storm-{i}?fail=2")})))
        .collect();
    for framework in Framework::ALL {
        let (_server, url) = serve(framework, Config::default());
        let output = batch(&["send", "--url", &url, "--concurrency", "2", "-"], &ops);
        let name = framework.name();
        assert_eq!(output.status.code(), Some(0), "{name}: {}", stderr(&output));
        let results = lines(&output);
        assert_eq!(results.len(), 60);
        for (i, result) in results.iter().enumerate() {
            assert_eq!(result["status"], 200, "{name}: {result}");
            assert_eq!(result["body"]["key"], format!("storm-{i}"));
            assert_eq!(
                result["body"]["attempts"], 3,
                "{name}: two 429s, then success"
            );
            assert_eq!(result["attempts"], 3, "{name}");
        }
    }
}

#[test]
fn ops_are_split_within_a_lowered_server_limit_in_both_formats() {
    let ops = Value::Array(
        (0..100)
            .map(|i| json!({"method": "PUT", "url": format!("/echo/{i}"), "body": {"n": i}}))
            .collect(),
    )
    .to_string();
    let config = || Config::builder().max_ops(7).max_body(250).build().unwrap();
    for framework in Framework::ALL {
        let (_server, url) = serve(framework, config());
        for format in ["native", "graph"] {
            let output = batch(&["send", "--url", &url, "--format", format, "-"], &ops);
            let name = framework.name();
            assert_eq!(
                output.status.code(),
                Some(0),
                "{name} {format}: {}",
                stderr(&output)
            );
            let results = lines(&output);
            assert_eq!(results.len(), 100);
            for (i, result) in results.iter().enumerate() {
                assert_eq!(result["status"], 200, "{name} {format}: {result}");
                assert_eq!(result["body"]["path"], format!("/echo/{i}"));
                assert_eq!(result["body"]["body"], json!({"n": i}));
            }
        }
    }
}

#[test]
fn a_refused_batch_prints_its_problem_and_exits_2() {
    // The op aimed at the batch path is refused with the whole batch, before any runs.
    let ops = r#"{"ops": [{"url": "/health"}, {"method": "POST", "url": "/batch"}]}"#;
    for framework in Framework::ALL {
        let (_server, url) = serve(framework, Config::default());
        let output = batch(&["send", "--url", &url, "-"], ops);
        let name = framework.name();
        assert_eq!(output.status.code(), Some(2), "{name}");
        let stderr = stderr(&output);
        assert!(stderr.contains("batch refused: 422"), "{name}: {stderr}");
        assert!(stderr.contains("(op 1, at /ops/1/url)"), "{name}: {stderr}");
        assert!(output.stdout.is_empty(), "{name}: no results");
    }
}

#[test]
fn each_batch_carries_its_own_idempotency_key_unless_told_not_to() {
    // The server notes the key of every batch it gets.
    let keys = Arc::new(Mutex::new(Vec::new()));
    let noted = keys.clone();
    let config = Config::builder()
        .max_ops(1)
        .batch_hook(move |batch| {
            let key = batch.outer().headers.get("idempotency-key").cloned();
            noted.lock().unwrap().push(key);
            async { Ok(()) }
        })
        .build()
        .unwrap();
    let (_server, url) = serve(Framework::Axum, config);
    let ops = r#"[{"method": "POST", "url": "/items", "body": {"name": "a"}}, {"url": "/health"}, {"url": "/text"}]"#;

    let output = batch(&["send", "--url", &url, "-"], ops);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut sent: Vec<_> = keys.lock().unwrap().drain(..).collect();
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(Option::is_some), "{sent:?}");
    sent.sort();
    sent.dedup();
    assert_eq!(sent.len(), 3, "one key per batch");

    let output = batch(&["send", "--url", &url, "--no-idempotency-key", "-"], ops);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let sent = keys.lock().unwrap().clone();
    assert_eq!(sent, [None, None, None]);
}

#[test]
fn a_failed_op_exits_1_and_the_table_shows_it() {
    let (_server, url) = serve(Framework::Axum, Config::default());
    let ops = "{\"url\": \"/items/1\", \"id\": \"one\"}\n{\"url\": \"/items/999999\"}\n";
    let output = batch(&["send", "--url", &url, "--output", "table", "-"], ops);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let table = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["#", "id", "status", "body"]
    );
    assert!(rows[1].starts_with("0  one  200"), "{table}");
    assert!(rows[1].contains(r#""name":"item-1""#), "{table}");
    assert!(rows[2].starts_with("1  1    404"), "{table}");
    assert_eq!(rows[3], "2 ops, 1 failed");
}

#[test]
fn headers_reach_every_op_and_single_requests_answer_the_same() {
    let (_server, url) = serve(Framework::Warp, Config::default());
    let ops = "{\"url\": \"/whoami\"}\n{\"url\": \"/whoami\"}\n";
    for mode in [&[][..], &["--single"][..]] {
        let args = [
            &[
                "send",
                "--url",
                &url,
                "--header",
                "authorization: Bearer ada",
            ][..],
            mode,
            &["-"],
        ]
        .concat();
        let output = batch(&args, ops);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{mode:?}: {}",
            stderr(&output)
        );
        for result in lines(&output) {
            assert_eq!(result["body"], json!({"user": "ada"}), "{mode:?}");
        }
    }
}

#[test]
fn usage_input_and_transport_errors_exit_2() {
    let no_url = batch(&["send", "-"], "{\"url\": \"/health\"}");
    assert_eq!(no_url.status.code(), Some(2));
    assert!(stderr(&no_url).contains("--url"), "{}", stderr(&no_url));

    let bad_header = batch(
        &[
            "send",
            "--url",
            "http://127.0.0.1:9/batch",
            "--header",
            "no colon",
            "-",
        ],
        "",
    );
    assert_eq!(bad_header.status.code(), Some(2));

    let not_ops = batch(
        &["send", "--url", "http://127.0.0.1:9/batch", "-"],
        "{\"url\": 7}\nnope\n",
    );
    assert_eq!(not_ops.status.code(), Some(2));
    assert!(stderr(&not_ops).contains("line 1"), "{}", stderr(&not_ops));

    // Nothing listens on the discard port: the batch cannot be sent.
    let unreachable = batch(
        &["send", "--url", "http://127.0.0.1:9/batch", "-"],
        "{\"url\": \"/health\"}",
    );
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(
        stderr(&unreachable).contains("transport"),
        "{}",
        stderr(&unreachable)
    );
}
