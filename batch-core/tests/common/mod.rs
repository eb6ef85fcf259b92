//! A scripted in-memory application for engine tests: the path says what to do.

#![allow(dead_code)] // each test file uses its own part of the script

pub mod app;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use batch_core::{BatchEndpoint, Config, ExecuteError, Executor};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

/// `/sleep/{ms}`, `/status/{code}`, `/panic`, `/big/{bytes}`, `/text`, `/binary`,
/// anything else: a JSON echo of method, uri, headers and body.
#[derive(Clone, Default)]
pub struct Script {
    /// Paths in the order their ops started.
    pub started: Arc<Mutex<Vec<String>>>,
    /// Paths in the order their ops finished.
    pub finished: Arc<Mutex<Vec<String>>>,
}

impl Executor for Script {
    async fn execute(
        &self,
        request: Request<Bytes>,
        max_response_body: usize,
    ) -> Result<Response<Bytes>, ExecuteError> {
        let path = request.uri().path().to_owned();
        self.started.lock().unwrap().push(path.clone());
        let mut segments = path.trim_start_matches('/').split('/');
        let response = match (segments.next(), segments.next()) {
            (Some("sleep"), Some(ms)) => {
                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
                json_response(StatusCode::OK, json!({"slept": ms}))
            }
            (Some("status"), Some(code)) => json_response(
                StatusCode::from_u16(code.parse().unwrap()).unwrap(),
                json!({}),
            ),
            (Some("panic"), _) => panic!("handler panicked with a secret"),
            (Some("big"), Some(n)) => Response::new(Bytes::from(vec![b'x'; n.parse().unwrap()])),
            (Some("text"), _) => Response::builder()
                .header("content-type", "text/plain")
                .body(Bytes::from_static(b"hello"))
                .unwrap(),
            (Some("binary"), _) => Response::new(Bytes::from_static(&[0, 159, 255])),
            _ => {
                let headers: serde_json::Map<String, Value> = request
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.to_string(), json!(v.to_str().unwrap())))
                    .collect();
                json_response(
                    StatusCode::OK,
                    json!({
                        "method": request.method().as_str(),
                        "uri": request.uri().to_string(),
                        "headers": headers,
                        "body": String::from_utf8_lossy(request.body()),
                    }),
                )
            }
        };
        self.finished.lock().unwrap().push(path);
        if response.body().len() > max_response_body {
            return Err(ExecuteError::ResponseTooLarge {
                limit: max_response_body,
            });
        }
        Ok(response)
    }
}

fn json_response(status: StatusCode, body: Value) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .unwrap()
}

/// A batch request with `body` and the usual outer headers.
pub fn batch_request(body: &Value) -> Request<Full<Bytes>> {
    Request::post("/batch")
        .header("content-type", "application/json")
        .header("authorization", "Bearer outer")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Runs `body` as a batch and returns the status and the parsed response body.
pub async fn run(config: Config, script: &Script, body: Value) -> (StatusCode, Value) {
    let response = respond(config, script, body).await;
    let status = response.status();
    (status, serde_json::from_slice(response.body()).unwrap())
}

/// Runs `body` as a batch and returns the whole response.
pub async fn respond(config: Config, script: &Script, body: Value) -> Response<Bytes> {
    BatchEndpoint::new(config)
        .handle(script, batch_request(&body))
        .await
}

/// The statuses of every result, in order.
pub fn statuses(body: &Value) -> Vec<u64> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect()
}
