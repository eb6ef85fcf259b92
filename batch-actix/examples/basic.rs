//! A small notes service on actix-web with the batch endpoint mounted: its own
//! routes, one layer of middleware (bearer-token authentication), and `POST /batch`.
//!
//! ```text
//! cargo run -p batch-actix --example basic [-- 127.0.0.1:3000]
//! ```
//!
//! The authentication middleware wraps the `App`, so it runs for every op of a batch
//! as for a direct request, and every op acts as the caller of the batch: ops
//! inherit its `authorization` header, may not set their own, and see the caller's
//! notes only. `with_batch` adds the batch endpoint to the `App` as a resource, so
//! the middleware runs on the batch request too: a batch without the header is
//! refused with 401 as a whole, before any op runs.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::{self, Next};
use actix_web::{App, Error, HttpMessage, HttpResponse, HttpServer, web};
use batch_core::{BatchEndpoint, Config};
use serde_json::{Value, json};

/// A batch that creates a note, then, once it exists, reads it and lists the
/// caller's notes.
pub const BATCH: &str = r#"{"ops": [{"id": "new", "method": "POST", "url": "/notes", "body": {"text": "buy milk"}}, {"url": "/notes/1", "depends_on": "new"}, {"url": "/notes", "depends_on": "new"}]}"#;

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1);
    let listener = std::net::TcpListener::bind(addr.as_deref().unwrap_or("127.0.0.1:3000"))?;
    let addr = listener.local_addr()?;
    println!(
        "notes on http://{addr}/notes, batches at http://{addr}/batch

Send a batch as the caller \"ada\":
  curl -s http://{addr}/batch -H 'content-type: application/json' -H 'authorization: Bearer ada' -d '{BATCH}'"
    );
    serve(listener)?.await?;
    Ok(())
}

/// Serves the notes API, with the batch endpoint, on `listener`; the server runs
/// once awaited.
pub fn serve(listener: std::net::TcpListener) -> std::io::Result<Server> {
    // Created once, outside the closure: every worker shares one cap on ops in
    // flight, and the notes.
    let batch = BatchEndpoint::new(Config::default());
    let notes = web::Data::new(Notes::default());
    let server = HttpServer::new(move || {
        let app = App::new()
            .app_data(notes.clone())
            .route("/notes", web::get().to(list))
            .route("/notes", web::post().to(create))
            .route("/notes/{id}", web::get().to(read))
            .route("/notes/{id}", web::delete().to(remove))
            .wrap(middleware::from_fn(authenticate));
        batch_actix::with_batch(app, batch.clone())
    })
    // A client that leaves stops its batch.
    .h1_allow_half_closed(false)
    .listen(listener)?;
    Ok(server.run())
}

/// The caller, named by the bearer token. A real service would verify the token.
#[derive(Clone)]
struct User(String);

/// Refuses a request without `authorization: Bearer <token>`; otherwise hands the
/// caller to the handlers.
async fn authenticate(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(user) = bearer(request.headers()) else {
        let refused = HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .json(json!({"error": "a bearer token is required"}));
        return Ok(request.into_response(refused).map_into_right_body());
    };
    request.extensions_mut().insert(user);
    Ok(next.call(request).await?.map_into_left_body())
}

fn bearer(headers: &HeaderMap) -> Option<User> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then(|| User(token.to_owned()))
}

/// Notes by id. Each caller sees only their own.
#[derive(Default)]
struct Notes(Mutex<BTreeMap<u64, Note>>);

struct Note {
    author: String,
    text: String,
}

impl Notes {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Note>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Note {
    fn json(&self, id: u64) -> Value {
        json!({"id": id, "text": self.text, "author": self.author})
    }
}

async fn list(notes: web::Data<Notes>, user: web::ReqData<User>) -> HttpResponse {
    let notes = notes.lock();
    let mine = notes.iter().filter(|(_, note)| note.author == user.0);
    HttpResponse::Ok().json(mine.map(|(id, note)| note.json(*id)).collect::<Vec<_>>())
}

async fn create(
    notes: web::Data<Notes>,
    user: web::ReqData<User>,
    body: web::Json<Value>,
) -> HttpResponse {
    let Some(text) = body["text"].as_str() else {
        return HttpResponse::UnprocessableEntity().json(json!({"error": "text required"}));
    };
    let mut notes = notes.lock();
    let id = notes.keys().last().map_or(1, |last| last + 1);
    let note = Note {
        author: user.into_inner().0,
        text: text.to_owned(),
    };
    let created = note.json(id);
    notes.insert(id, note);
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/notes/{id}")))
        .json(created)
}

async fn read(
    notes: web::Data<Notes>,
    user: web::ReqData<User>,
    id: web::Path<u64>,
) -> HttpResponse {
    let id = id.into_inner();
    match notes.lock().get(&id) {
        Some(note) if note.author == user.0 => HttpResponse::Ok().json(note.json(id)),
        _ => not_found(),
    }
}

async fn remove(
    notes: web::Data<Notes>,
    user: web::ReqData<User>,
    id: web::Path<u64>,
) -> HttpResponse {
    let id = id.into_inner();
    let mut notes = notes.lock();
    if notes.get(&id).is_none_or(|note| note.author != user.0) {
        return not_found();
    }
    notes.remove(&id);
    HttpResponse::NoContent().finish()
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"error": "not found"}))
}
