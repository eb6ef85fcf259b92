//! `cargo run -p conformance -- --url ...`: exit status and output a CI script relies on.
//!
//! With `CONFORMANCE_URL` set, the passing run checks that server and no test here
//! starts one of its own.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};

use batch_core::Config;
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

#[test]
fn failing_scenarios_exit_one_and_name_each_failure() {
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
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
    let help = conformance(&["--help"]).unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: conformance --url <URL>"));
}
