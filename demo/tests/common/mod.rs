//! The demo binary, started as a child process for a test.

#![allow(dead_code)] // each test file uses its own part
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use conformance::client::{Client, Exchange};
use fixture::socket_client::JsonSocket;
use serde_json::{Value, json};

/// How long the demo has to do what a test waits for.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running demo process; killed when dropped, its log printed if the test failed.
pub struct Demo {
    name: &'static str,
    child: Child,
    /// `http://{addr}`.
    pub url: String,
    log: Arc<Mutex<String>>,
    /// A client of the demo.
    pub http: Client,
}

impl Demo {
    /// Starts the demo on a free port with `args` and `env` besides, and waits for
    /// the URL it prints.
    pub fn start(name: &'static str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_demo"))
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the demo binary runs");
        // The demo logs to stdout (tracing's default) and reports errors on stderr:
        // both go to the log; the first line naming the URL gives it.
        let log = Arc::new(Mutex::new(String::new()));
        let (url_tx, url_rx) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = BufReader::new(child.stderr.take().unwrap());
        for output in [
            Box::new(stdout) as Box<dyn BufRead + Send>,
            Box::new(stderr),
        ] {
            let (log, url_tx) = (log.clone(), url_tx.clone());
            std::thread::spawn(move || {
                for line in output.lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        let url = rest.split_whitespace().next().unwrap_or_default();
                        let _ = url_tx.send(url.to_owned());
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let url = url_rx.recv_timeout(WAIT).unwrap_or_else(|_| {
            panic!("demo {name} printed no URL; log:\n{}", log.lock().unwrap())
        });
        let http = Client::new(&url);
        Self {
            name,
            child,
            url,
            log,
            http,
        }
    }

    pub fn logged(&self, text: &str) -> bool {
        self.log.lock().unwrap().contains(text)
    }

    pub async fn until_logged(&self, text: &str, within: Duration) {
        let start = Instant::now();
        while !self.logged(text) {
            assert!(
                start.elapsed() < within,
                "demo {} did not log {text:?} within {within:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn socket(&self, subscriptions: &[&str]) -> JsonSocket {
        let mut socket = JsonSocket::open(&self.url).await.unwrap();
        for uri in subscriptions {
            let state = socket.subscribe(uri, WAIT).await.unwrap();
            assert_eq!(state["type"], "state", "{state}");
        }
        socket
    }

    /// A plain JSON request; the status and the parsed body.
    pub async fn request(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let headers = [("content-type".to_owned(), "application/json".to_owned())];
        let body = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        let exchange = self.http.send(method, path, &headers, body).await.unwrap();
        let parsed = serde_json::from_slice(&exchange.body).unwrap_or(Value::Null);
        (exchange.status.as_u16(), parsed)
    }

    /// A native batch of `ops`; the status of each op.
    pub async fn batch(&self, ops: Value) -> Vec<u64> {
        let (status, body) = self.request("POST", "/batch", json!({"ops": ops})).await;
        assert_eq!(status, 200, "{body}");
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|result| result["status"].as_u64().unwrap())
            .collect()
    }

    /// `method path` with `headers` and `body`, over the wire as the demo got it.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Exchange {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        self.http
            .send(method, path, &headers, Bytes::from(body.to_owned()))
            .await
            .unwrap()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- demo {} log ---\n{}",
                self.name,
                self.log.lock().unwrap()
            );
        }
    }
}
