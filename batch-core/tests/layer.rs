//! `BatchLayer` in front of a plain tower service: the batch path is the endpoint's,
//! every other request is the service's own, and ops run through the service.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use batch_core::{BatchLayer, BatchOp, Config, RequestBody, ResponseBody};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::{Layer, Service, ServiceExt};

/// What the wrapped service saw of one request.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    path: String,
    op_index: Option<usize>,
    body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// An application that records each request and answers with its path.
fn app(
    log: Log,
) -> impl tower::Service<
    Request<RequestBody<Full<Bytes>>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |request: Request<RequestBody<Full<Bytes>>>| {
        let log = Arc::clone(&log);
        async move {
            let path = request.uri().path().to_owned();
            let op_index = request.extensions().get::<BatchOp>().map(BatchOp::index);
            let body = request.into_body().collect().await.unwrap().to_bytes();
            log.lock().unwrap().push(Seen {
                path: path.clone(),
                op_index,
                body: String::from_utf8(body.to_vec()).unwrap(),
            });
            let response = Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(json!({ "path": path }).to_string())))
                .unwrap();
            Ok::<_, Infallible>(response)
        }
    })
}

async fn send<S>(service: &S, method: &str, path: &str, body: &str) -> (StatusCode, Response<Bytes>)
where
    S: Service<
            Request<Full<Bytes>>,
            Response = Response<ResponseBody<Full<Bytes>>>,
            Error = Infallible,
        > + Clone,
{
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, Response::from_parts(parts, body))
}

fn json(response: &Response<Bytes>) -> Value {
    serde_json::from_slice(response.body()).unwrap()
}

#[tokio::test]
async fn other_paths_reach_the_service_as_they_came() {
    let log = Log::default();
    let service = BatchLayer::new(Config::default()).layer(app(log.clone()));
    let (status, response) = send(&service, "PUT", "/items/1", "{\"a\":1}").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&response), json!({"path": "/items/1"}));
    assert_eq!(
        *log.lock().unwrap(),
        [Seen {
            path: "/items/1".into(),
            op_index: None,
            body: "{\"a\":1}".into(),
        }]
    );
}

#[tokio::test]
async fn the_batch_path_in_any_spelling_runs_ops_through_the_service() {
    let log = Log::default();
    let service = BatchLayer::new(Config::default()).layer(app(log.clone()));
    for path in ["/batch", "/Batch/", "/b%61tch"] {
        log.lock().unwrap().clear();
        let batch =
            r#"{"ops": [{"url": "/a"}, {"method": "POST", "url": "/b", "body": {"x": 1}}]}"#;
        let (status, response) = send(&service, "POST", path, batch).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let answer = json(&response);
        assert_eq!(
            answer["results"][1]["body"],
            json!({"path": "/b"}),
            "{path}"
        );
        let seen = log.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                Seen {
                    path: "/a".into(),
                    op_index: Some(0),
                    body: String::new(),
                },
                Seen {
                    path: "/b".into(),
                    op_index: Some(1),
                    body: "{\"x\": 1}".into(),
                },
            ],
            "{path}: only the ops reached the service"
        );
    }
}

#[tokio::test]
async fn the_batch_path_takes_only_post() {
    let log = Log::default();
    let service = BatchLayer::new(Config::default()).layer(app(log.clone()));
    let (status, response) = send(&service, "GET", "/batch", "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST, OPTIONS");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(
        log.lock().unwrap().is_empty(),
        "nothing reached the service"
    );
}

#[tokio::test]
async fn services_of_one_endpoint_share_its_cap_on_ops_in_flight() {
    let endpoint =
        batch_core::BatchEndpoint::new(Config::builder().max_in_flight(1).build().unwrap());
    let layer = BatchLayer::from_endpoint(endpoint.clone());
    let service = layer.layer(app(Log::default()));
    // Hold the only permit with a batch on the endpoint itself, whose op never ends.
    struct Forever;
    impl batch_core::Executor for Forever {
        async fn execute(
            &self,
            _request: Request<Bytes>,
            _max_response_body: usize,
        ) -> Result<Response<Bytes>, batch_core::ExecuteError> {
            std::future::pending().await
        }
    }
    let held = tokio::spawn(async move {
        let request = Request::post("/batch")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"ops": [{"url": "/x"}]}"#,
            )))
            .unwrap();
        endpoint.handle(&Forever, request).await
    });
    tokio::task::yield_now().await;
    let (status, response) = send(&service, "POST", "/batch", r#"{"ops": [{"url": "/a"}]}"#).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    held.abort();
}
