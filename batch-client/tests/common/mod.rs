//! What the tests against the fixture servers share: starting one, and reading its
//! request counter.

use std::net::SocketAddr;

use batch_client::{Client, Operation};
use batch_core::Config;
use fixture::{Framework, Server};
use serde_json::Value;

/// Serves the fixture of `framework` with the batch endpoint at `config`, on a
/// free port of 127.0.0.1; stopped when dropped.
pub fn start(framework: Framework, config: Config) -> Server {
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    match framework.start(addr, config) {
        Ok(server) => server,
        Err(err) => panic!("the {} fixture server starts: {err}", framework.name()),
    }
}

/// The batch endpoint of `server`.
pub fn batch_url(server: &Server) -> String {
    format!("{}/batch", server.url())
}

/// Requests that reached the fixture app of `server` so far (the `/counter` request
/// included).
pub async fn counter(server: &Server) -> u64 {
    let client = Client::new(&batch_url(server)).unwrap();
    let answer = client
        .send_single(&Operation::new("GET", "/counter"))
        .await
        .unwrap();
    answer.json::<Value>().unwrap()["requests"]
        .as_u64()
        .unwrap()
}
