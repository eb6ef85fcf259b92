//! `cargo run -p conformance -- --url ...`: exit status and output a CI script relies on.
//!
//! With `CONFORMANCE_URL` set, the passing runs check that server (its socket
//! scenarios unless `CONFORMANCE_SKIP=sockets`) and no test here starts one of its
//! own.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};

use batch_core::{Config, SocketConfig};
use conformance::Requirement;
use fixture::Server;

fn conformance(args: &[&str]) -> std::io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(args)
        .output()
}

/// The url of a server that passes the scenarios: `CONFORMANCE_URL`'s when set, else
/// the axum fixture's on a free port (kept running by the returned handle).
fn passing_server() -> (String, Option<Server>) {
    match common::url_from_env("CONFORMANCE_URL") {
        Ok(Some(url)) => (url, None),
        Ok(None) => {
            let free = SocketAddr::from(([127, 0, 0, 1], 0));
            let server = fixture::axum::start(free, Config::default())
                .unwrap_or_else(|err| panic!("starting the axum fixture: {err}"));
            (server.url(), Some(server))
        }
        Err(why) => panic!("{why}"),
    }
}

#[test]
fn passing_scenarios_exit_zero_with_the_summary_line() {
    let (url, _server) = passing_server();
    let output = conformance(&["--url", &url, "--name", "checked", "--only", "fixture."]).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("checked: ") && last.ends_with(" passed, 0 failed"),
        "{stdout}"
    );
}

/// A base url nothing listens on: a port just released.
fn nothing_listening() -> std::io::Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("http://127.0.0.1:{port}"))
}

#[test]
fn socket_scenarios_run_over_websocket_at_the_base_urls_host() {
    let skipped = common::skipped_from_env().unwrap_or_else(|why| panic!("{why}"));
    let (url, _server) = match common::url_from_env("CONFORMANCE_URL") {
        Ok(Some(url)) => (url, None),
        Ok(None) => {
            let free = SocketAddr::from(([127, 0, 0, 1], 0));
            let config = Config::builder()
                .sockets(SocketConfig::default())
                .build()
                .unwrap();
            let server = fixture::tower::start(free, config)
                .unwrap_or_else(|err| panic!("starting the tower fixture: {err}"));
            (server.url(), Some(server))
        }
        Err(why) => panic!("{why}"),
    };
    let mut args = vec![
        "--url",
        &url,
        "--name",
        "sockets",
        "--only",
        "socket_protocol.",
    ];
    for requirement in &skipped {
        args.extend(["--skip", requirement.name()]);
    }
    let output = conformance(&args).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    let passed: usize = last
        .strip_prefix("sockets: ")
        .and_then(|rest| rest.strip_suffix(" passed, 0 failed"))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {stdout}"));
    if skipped.contains(&Requirement::Sockets) {
        assert_eq!(passed, 0, "{stdout}");
    } else {
        assert!(passed >= 10, "{stdout}");
    }
}

#[test]
fn skipping_sockets_leaves_the_socket_scenarios_out() {
    let url = nothing_listening().unwrap();
    let args = ["--url", &url, "--only", "socket_protocol."];
    let run = conformance(&args).unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL socket_protocol.subscribe_answers_the_list_state [socket/protocol.json]: step 1 (socket a open)"),
        "{stdout}"
    );
    let skipped = conformance(&[&args[..], &["--skip", "sockets"]].concat()).unwrap();
    let stdout = String::from_utf8_lossy(&skipped.stdout);
    assert!(skipped.status.success(), "{stdout}");
    assert!(stdout.ends_with(": 0 passed, 0 failed\n"), "{stdout}");
}

#[test]
fn failing_scenarios_exit_one_and_name_each_failure() {
    let url = nothing_listening().unwrap();
    let output = conformance(&["--url", &url, "--only", "fixture.health"]).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL fixture.health [fixture/api.json]"),
        "{stdout}"
    );
    assert!(stdout.ends_with(": 0 passed, 1 failed\n"), "{stdout}");
}

#[test]
fn usage_errors_exit_two_and_help_exits_zero() {
    let missing = conformance(&[]).unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--url is required"));
    let bad_url = conformance(&["--url", "127.0.0.1:8080"]).unwrap();
    assert_eq!(bad_url.status.code(), Some(2));
    let unknown = conformance(&["--url", "http://127.0.0.1:1", "--skip", "socket"]).unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown requirement \"socket\""));
    let help = conformance(&["--help"]).unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: conformance --url <URL>"));
}
