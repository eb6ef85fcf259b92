//! Real-time resources on warp: a small item API in memory, with the batch endpoint
//! at `/batch` and sockets at `/socket`.
//!
//! ```text
//! cargo run -p batch-warp --example realtime_warp
//! ```
//!
//! A socket subscribed to `/items/` is told of every change to an item, whichever
//! way it was made: a socket message, an op of a batch, or a plain HTTP request.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use batch_core::{Config, SocketConfig};
use serde_json::{Value, json};
use warp::http::{StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

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
    // Sockets are off until the config turns them on; the defaults serve `/socket`.
    let config = Config::builder().sockets(SocketConfig::default()).build()?;
    let app = batch_warp::with_batch(routes(Items::default()), config);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 3000));
    println!("{}", what_to_try(&addr.to_string()));
    warp::serve(app).run(addr).await;
    Ok(())
}

/// `GET/POST /items`, `GET/PATCH/DELETE /items/{id}`. Every rejection is recovered
/// inside the routes: ops, socket messages and (with sockets on) direct mutations
/// are dispatched through them whole.
fn routes(items: Items) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let items = warp::any().map(move || items.clone());
    let list = warp::path!("items")
        .and(warp::get())
        .and(items.clone())
        .map(list);
    let create = warp::path!("items")
        .and(warp::post())
        .and(items.clone())
        .and(warp::body::json())
        .map(create);
    let read = warp::path!("items" / u64)
        .and(warp::get())
        .and(items.clone())
        .map(read);
    let update = warp::path!("items" / u64)
        .and(warp::patch())
        .and(items.clone())
        .and(warp::body::json())
        .map(update);
    let remove = warp::path!("items" / u64)
        .and(warp::delete())
        .and(items)
        .map(remove);
    list.or(create)
        .unify()
        .or(read)
        .unify()
        .or(update)
        .unify()
        .or(remove)
        .unify()
        .recover(recover)
        .unify()
}

fn list(items: Items) -> Response {
    let items = items.lock();
    let list: Vec<Value> = items.iter().map(|(id, name)| item(*id, name)).collect();
    warp::reply::json(&list).into_response()
}

fn create(items: Items, body: Value) -> Response {
    let Some(name) = body["name"].as_str() else {
        return name_required();
    };
    let mut items = items.lock();
    let id = items.keys().last().map_or(1, |last| last + 1);
    items.insert(id, name.to_owned());
    let created = warp::reply::with_status(warp::reply::json(&item(id, name)), StatusCode::CREATED);
    warp::reply::with_header(created, header::LOCATION, format!("/items/{id}")).into_response()
}

fn read(id: u64, items: Items) -> Response {
    match items.lock().get(&id) {
        Some(name) => warp::reply::json(&item(id, name)).into_response(),
        None => error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn update(id: u64, items: Items, body: Value) -> Response {
    let Some(new_name) = body["name"].as_str() else {
        return name_required();
    };
    let mut items = items.lock();
    let Some(name) = items.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    new_name.clone_into(name);
    warp::reply::json(&item(id, name)).into_response()
}

fn remove(id: u64, items: Items) -> Response {
    match items.lock().remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => error(StatusCode::NOT_FOUND, "not found"),
    }
}

async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    Ok(if rejection.is_not_found() {
        error(StatusCode::NOT_FOUND, "not found")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    } else {
        error(StatusCode::BAD_REQUEST, "the request could not be read")
    })
}

fn item(id: u64, name: &str) -> Value {
    json!({"id": id, "name": name})
}

fn error(status: StatusCode, message: &str) -> Response {
    warp::reply::with_status(warp::reply::json(&json!({"error": message})), status).into_response()
}

fn name_required() -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, "name required")
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
