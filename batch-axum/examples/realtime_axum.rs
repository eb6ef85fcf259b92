//! Real-time resources on axum: a small item API in memory, with the batch endpoint
//! at `/batch` and sockets at `/socket`.
//!
//! ```text
//! cargo run -p batch-axum --example realtime_axum
//! ```
//!
//! A socket subscribed to `/items/` is told of every change to an item, whichever
//! way it was made: a socket message, an op of a batch, or a plain HTTP request.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use batch_core::{Config, SocketConfig};
use serde_json::{Value, json};

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
    let routes = Router::new()
        .route("/items", get(list).post(create))
        .route("/items/{id}", get(read).patch(update).delete(remove))
        .with_state(Items::default());
    // Sockets are off until the config turns them on; the defaults serve `/socket`.
    let config = Config::builder().sockets(SocketConfig::default()).build()?;
    let app = batch_axum::with_batch(routes, config);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("{}", what_to_try(&listener.local_addr()?.to_string()));
    axum::serve(listener, app).await?;
    Ok(())
}

async fn list(State(items): State<Items>) -> Json<Value> {
    let items = items.lock();
    Json(items.iter().map(|(id, name)| item(*id, name)).collect())
}

async fn create(State(items): State<Items>, Json(body): Json<Value>) -> Response {
    let Some(name) = body["name"].as_str() else {
        return name_required();
    };
    let mut items = items.lock();
    let id = items.keys().last().map_or(1, |last| last + 1);
    items.insert(id, name.to_owned());
    let location = [(header::LOCATION, format!("/items/{id}"))];
    (StatusCode::CREATED, location, Json(item(id, name))).into_response()
}

async fn read(State(items): State<Items>, Path(id): Path<u64>) -> Response {
    match items.lock().get(&id) {
        Some(name) => Json(item(id, name)).into_response(),
        None => not_found(),
    }
}

async fn update(
    State(items): State<Items>,
    Path(id): Path<u64>,
    Json(body): Json<Value>,
) -> Response {
    let Some(new_name) = body["name"].as_str() else {
        return name_required();
    };
    let mut items = items.lock();
    let Some(name) = items.get_mut(&id) else {
        return not_found();
    };
    new_name.clone_into(name);
    Json(item(id, name)).into_response()
}

async fn remove(State(items): State<Items>, Path(id): Path<u64>) -> Response {
    match items.lock().remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(),
    }
}

fn item(id: u64, name: &str) -> Value {
    json!({"id": id, "name": name})
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
}

fn name_required() -> Response {
    let error = Json(json!({"error": "name required"}));
    (StatusCode::UNPROCESSABLE_ENTITY, error).into_response()
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
