//! A small item store as a tower service, served by hyper behind `BatchLayer`, for
//! socket tests over real connections.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use batch_core::{BatchEndpoint, BatchLayer, RequestBody};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tower::Layer;

/// Items by id, shared by every request, and a gauge of the `GET /slow` requests.
#[derive(Clone, Default)]
pub struct Items(Arc<Mutex<BTreeMap<u64, String>>>, Slow);

/// How many `GET /slow` requests run now, and the most that ever ran at once. A
/// request cancelled while it sleeps stops counting at once.
#[derive(Clone, Default)]
pub struct Slow(Arc<(AtomicUsize, AtomicUsize)>);

impl Slow {
    /// The `GET /slow` requests running now.
    pub fn running(&self) -> usize {
        (self.0).0.load(Ordering::SeqCst)
    }

    /// The most `GET /slow` requests that ever ran at once.
    pub fn peak(&self) -> usize {
        (self.0).1.load(Ordering::SeqCst)
    }

    /// Counts one request until the guard drops.
    fn enter(&self) -> impl Drop {
        let now = (self.0).0.fetch_add(1, Ordering::SeqCst) + 1;
        (self.0).1.fetch_max(now, Ordering::SeqCst);
        Leave(self.clone())
    }
}

struct Leave(Slow);

impl Drop for Leave {
    fn drop(&mut self) {
        ((self.0).0).0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Items {
    /// The gauge of `GET /slow` requests.
    pub fn slow(&self) -> &Slow {
        &self.1
    }
}

/// `GET/PATCH/DELETE /items/{id}`, `GET/POST /items`, `GET /slow?ms=N`; a request
/// with `authorization: Bearer deny` is answered 401 before any route, as an
/// authentication middleware would, and one with the query `delay=N` is answered
/// N ms late.
pub async fn answer(
    items: Items,
    request: Request<RequestBody<Incoming>>,
) -> Response<Full<Bytes>> {
    let denied = request
        .headers()
        .get("authorization")
        .is_some_and(|v| v == "Bearer deny");
    if denied {
        return json(StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}));
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let name = || {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["name"].as_str().map(str::to_owned))
    };
    if let Some(ms) = query.strip_prefix("delay=") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["slow"]) => {
            let ms = query.trim_start_matches("ms=").parse().unwrap_or(0);
            let _running = items.slow().enter();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            json(StatusCode::OK, json!({"slept": ms}))
        }
        ("GET", ["items"]) => {
            let items = items.0.lock().unwrap();
            let list: Vec<Value> = items
                .iter()
                .map(|(id, name)| json!({"id": id, "name": name}))
                .collect();
            json(StatusCode::OK, Value::Array(list))
        }
        ("POST", ["items"]) => {
            let Some(name) = name() else {
                return json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"error": "name required"}),
                );
            };
            let mut items = items.0.lock().unwrap();
            let id = items.keys().last().map_or(1, |last| last + 1);
            items.insert(id, name.clone());
            let mut response = json(StatusCode::CREATED, json!({"id": id, "name": name}));
            response
                .headers_mut()
                .insert("location", format!("/items/{id}").parse().unwrap());
            response
        }
        (method, ["items", id]) => {
            let Ok(id) = id.parse::<u64>() else {
                return json(StatusCode::NOT_FOUND, json!({"error": "not found"}));
            };
            let mut items = items.0.lock().unwrap();
            match (method, items.get(&id).cloned()) {
                (_, None) => json(StatusCode::NOT_FOUND, json!({"error": "not found"})),
                ("GET", Some(name)) => json(StatusCode::OK, json!({"id": id, "name": name})),
                ("PATCH", Some(_)) => match name() {
                    Some(name) => {
                        items.insert(id, name.clone());
                        json(StatusCode::OK, json!({"id": id, "name": name}))
                    }
                    None => json(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        json!({"error": "name required"}),
                    ),
                },
                ("DELETE", Some(_)) => {
                    items.remove(&id);
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = StatusCode::NO_CONTENT;
                    response
                }
                _ => json(
                    StatusCode::METHOD_NOT_ALLOWED,
                    json!({"error": "method not allowed"}),
                ),
            }
        }
        _ => json(StatusCode::NOT_FOUND, json!({"error": "not found"})),
    }
}

fn json(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

/// Serves the store behind `endpoint` on a free port of 127.0.0.1, with upgrades,
/// on the current runtime; returns the address and the store.
pub async fn serve(endpoint: BatchEndpoint) -> (SocketAddr, Items) {
    let items = Items::default();
    let store = items.clone();
    let app = tower::service_fn(move |request| {
        let items = store.clone();
        async move { Ok::<_, Infallible>(answer(items, request).await) }
    });
    let service = BatchLayer::from_endpoint(endpoint).layer(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades(),
            );
        }
    });
    (addr, items)
}
