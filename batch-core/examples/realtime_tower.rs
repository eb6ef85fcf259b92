//! Real-time resources on plain hyper, with [`BatchLayer`] in front of a tower
//! service: a small item API in memory, with the batch endpoint at `/batch` and
//! sockets at `/socket`.
//!
//! ```text
//! cargo run -p batch-core --example realtime_tower
//! ```
//!
//! A socket subscribed to `/items/` is told of every change to an item, whichever
//! way it was made: a socket message, an op of a batch, or a plain HTTP request.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use batch_core::{BatchLayer, Config, RequestBody, SocketConfig};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tower::Layer;

/// Item names by id.
#[derive(Clone, Default)]
struct Items(Arc<Mutex<BTreeMap<u64, String>>>);

impl Items {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let items = Items::default();
    let app = tower::service_fn(move |request| {
        let items = items.clone();
        async move { Ok::<_, Infallible>(answer(&items, request).await) }
    });
    // Sockets are off until the config turns them on; the defaults serve `/socket`.
    let config = Config::builder().sockets(SocketConfig::default()).build()?;
    let service = BatchLayer::new(config).layer(app);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("{}", what_to_try(&listener.local_addr()?.to_string()));
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        // Sockets are served over hyper's upgrade: the connection must allow it.
        let connection = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        tokio::spawn(connection);
    }
}

/// `GET/POST /items`, `GET/PATCH/DELETE /items/{id}`.
async fn answer(items: &Items, request: Request<RequestBody<Incoming>>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let Ok(body) = request.into_body().collect().await else {
        return json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unreadable body"}),
        );
    };
    let name = serde_json::from_slice::<Value>(&body.to_bytes())
        .ok()
        .and_then(|body| body["name"].as_str().map(str::to_owned));
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut items = items.lock();
    match (method, segments.as_slice()) {
        (Method::GET, ["items"]) => {
            let list: Vec<Value> = items.iter().map(|(id, name)| item(*id, name)).collect();
            json(StatusCode::OK, &Value::Array(list))
        }
        (Method::POST, ["items"]) => {
            let Some(name) = name else {
                return name_required();
            };
            let id = items.keys().last().map_or(1, |last| last + 1);
            let mut response = json(StatusCode::CREATED, &item(id, &name));
            items.insert(id, name);
            if let Ok(location) = HeaderValue::from_str(&format!("/items/{id}")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        (method, ["items", id]) => {
            let Some((id, current)) = id
                .parse::<u64>()
                .ok()
                .and_then(|id| Some((id, items.get(&id)?.clone())))
            else {
                return not_found();
            };
            match method {
                Method::GET => json(StatusCode::OK, &item(id, &current)),
                Method::PATCH => {
                    let Some(name) = name else {
                        return name_required();
                    };
                    let response = json(StatusCode::OK, &item(id, &name));
                    items.insert(id, name);
                    response
                }
                Method::DELETE => {
                    items.remove(&id);
                    let mut response = Response::new(Full::default());
                    *response.status_mut() = StatusCode::NO_CONTENT;
                    response
                }
                _ => json(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &json!({"error": "method not allowed"}),
                ),
            }
        }
        _ => not_found(),
    }
}

fn item(id: u64, name: &str) -> Value {
    json!({"id": id, "name": name})
}

fn json(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn not_found() -> Response<Full<Bytes>> {
    json(StatusCode::NOT_FOUND, &json!({"error": "not found"}))
}

fn name_required() -> Response<Full<Bytes>> {
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({"error": "name required"}),
    )
}

/// What to run against the server listening on `addr`.
fn what_to_try(addr: &str) -> String {
    format!(
        "items on http://{addr}/items, batches at /batch, sockets at ws://{addr}/socket

Subscribe in one terminal (websocat, or new WebSocket(\"ws://{addr}/socket\") in a browser):
  websocat ws://{addr}/socket
  {{\"type\": \"subscribe\", \"uri\": \"/items/\", \"ref\": \"s1\"}}
  {{\"type\": \"create\", \"uri\": \"/items/\", \"attributes\": {{\"name\": \"pen\"}}, \"ref\": \"c1\"}}

Change items from another; the socket sees each change:
  curl -s -X PATCH http://{addr}/items/1 -H 'content-type: application/json' -d '{{\"name\": \"ink\"}}'
  curl -s http://{addr}/batch -H 'content-type: application/json' -d '{{\"ops\": [{{\"method\": \"POST\", \"url\": \"/items\", \"body\": {{\"name\": \"cap\"}}}}]}}'
  curl -s -X DELETE http://{addr}/items/1"
    )
}
