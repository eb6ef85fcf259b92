//! Real-time resources on actix-web: a small item API in memory, with the batch
//! endpoint at `/batch` and sockets at `/socket`.
//!
//! ```text
//! cargo run -p batch-actix --example realtime_actix
//! ```
//!
//! A socket subscribed to `/items/` is told of every change to an item, whichever
//! way it was made: a socket message, an op of a batch, or a plain HTTP request.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, web};
use batch_core::{BatchEndpoint, Config, SocketConfig};
use serde_json::{Value, json};

/// Item names by id.
#[derive(Default)]
struct Items(Mutex<BTreeMap<u64, String>>);

impl Items {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Sockets are off until the config turns them on; the defaults serve `/socket`.
    let config = Config::builder().sockets(SocketConfig::default()).build()?;
    // Created once, outside the closure: every worker shares one hub, one cap on
    // open sockets and one cap on ops in flight. So do the items.
    let batch = BatchEndpoint::new(config);
    let items = web::Data::new(Items::default());
    let server = HttpServer::new(move || {
        let app = App::new()
            .app_data(items.clone())
            .route("/items", web::get().to(list))
            .route("/items", web::post().to(create))
            .route("/items/{id}", web::get().to(read))
            .route("/items/{id}", web::patch().to(update))
            .route("/items/{id}", web::delete().to(remove));
        batch_actix::with_batch(app, batch.clone())
    })
    // A client that leaves stops its batch.
    .h1_allow_half_closed(false)
    // A socket's messages are small writes: send each at once (no Nagle delay).
    .on_connect(batch_actix::no_delay)
    .bind("127.0.0.1:3000")?;
    for addr in server.addrs() {
        println!("{}", what_to_try(&addr.to_string()));
    }
    server.run().await?;
    Ok(())
}

async fn list(items: web::Data<Items>) -> HttpResponse {
    let items = items.lock();
    let list: Vec<Value> = items.iter().map(|(id, name)| item(*id, name)).collect();
    HttpResponse::Ok().json(list)
}

async fn create(items: web::Data<Items>, body: web::Json<Value>) -> HttpResponse {
    let Some(name) = body["name"].as_str() else {
        return name_required();
    };
    let mut items = items.lock();
    let id = items.keys().last().map_or(1, |last| last + 1);
    items.insert(id, name.to_owned());
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/items/{id}")))
        .json(item(id, name))
}

async fn read(items: web::Data<Items>, id: web::Path<u64>) -> HttpResponse {
    let id = id.into_inner();
    match items.lock().get(&id) {
        Some(name) => HttpResponse::Ok().json(item(id, name)),
        None => not_found(),
    }
}

async fn update(
    items: web::Data<Items>,
    id: web::Path<u64>,
    body: web::Json<Value>,
) -> HttpResponse {
    let id = id.into_inner();
    let Some(new_name) = body["name"].as_str() else {
        return name_required();
    };
    let mut items = items.lock();
    let Some(name) = items.get_mut(&id) else {
        return not_found();
    };
    new_name.clone_into(name);
    HttpResponse::Ok().json(item(id, name))
}

async fn remove(items: web::Data<Items>, id: web::Path<u64>) -> HttpResponse {
    match items.lock().remove(&id.into_inner()) {
        Some(_) => HttpResponse::NoContent().finish(),
        None => not_found(),
    }
}

fn item(id: u64, name: &str) -> Value {
    json!({"id": id, "name": name})
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"error": "not found"}))
}

fn name_required() -> HttpResponse {
    HttpResponse::UnprocessableEntity().json(json!({"error": "name required"}))
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
