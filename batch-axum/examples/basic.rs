//! A small notes service on axum with the batch endpoint mounted: its own routes,
//! one layer of middleware (bearer-token authentication), and `POST /batch`.
//!
//! ```text
//! cargo run -p batch-axum --example basic [-- 127.0.0.1:3000]
//! ```
//!
//! The authentication layer is added to the router before `with_batch`, so it runs
//! for every op of a batch as for a direct request, and every op acts as the caller
//! of the batch: ops inherit its `authorization` header, may not set their own, and
//! see the caller's notes only. The batch request itself does not pass through the
//! layer: a batch without the header is answered 200, and each of its ops 401.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use batch_core::Config;
use serde_json::{Value, json};

/// A batch that creates a note, then, once it exists, reads it and lists the
/// caller's notes.
pub const BATCH: &str = r#"{"ops": [{"id": "new", "method": "POST", "url": "/notes", "body": {"text": "buy milk"}}, {"url": "/notes/1", "depends_on": "new"}, {"url": "/notes", "depends_on": "new"}]}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1);
    let listener =
        tokio::net::TcpListener::bind(addr.as_deref().unwrap_or("127.0.0.1:3000")).await?;
    let addr = listener.local_addr()?;
    println!(
        "notes on http://{addr}/notes, batches at http://{addr}/batch

Send a batch as the caller \"ada\":
  curl -s http://{addr}/batch -H 'content-type: application/json' -H 'authorization: Bearer ada' -d '{BATCH}'"
    );
    serve(listener).await?;
    Ok(())
}

/// Serves the notes API, with the batch endpoint, on `listener`.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let routes = Router::new()
        .route("/notes", get(list).post(create))
        .route("/notes/{id}", get(read).delete(remove))
        .layer(middleware::from_fn(authenticate))
        .with_state(Notes::default());
    let app = batch_axum::with_batch(routes, Config::default());
    axum::serve(listener, app).await
}

/// The caller, named by the bearer token. A real service would verify the token.
#[derive(Clone)]
struct User(String);

/// Refuses a request without `authorization: Bearer <token>`; otherwise hands the
/// caller to the handlers.
async fn authenticate(mut request: Request, next: Next) -> Response {
    match bearer(request.headers()) {
        Some(user) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        None => {
            let error = Json(json!({"error": "a bearer token is required"}));
            let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
            (StatusCode::UNAUTHORIZED, challenge, error).into_response()
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<User> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then(|| User(token.to_owned()))
}

/// Notes by id. Each caller sees only their own.
#[derive(Clone, Default)]
struct Notes(Arc<Mutex<BTreeMap<u64, Note>>>);

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

async fn list(State(notes): State<Notes>, Extension(user): Extension<User>) -> Json<Value> {
    let notes = notes.lock();
    let mine = notes.iter().filter(|(_, note)| note.author == user.0);
    Json(mine.map(|(id, note)| note.json(*id)).collect())
}

async fn create(
    State(notes): State<Notes>,
    Extension(User(author)): Extension<User>,
    Json(body): Json<Value>,
) -> Response {
    let Some(text) = body["text"].as_str() else {
        let error = Json(json!({"error": "text required"}));
        return (StatusCode::UNPROCESSABLE_ENTITY, error).into_response();
    };
    let mut notes = notes.lock();
    let id = notes.keys().last().map_or(1, |last| last + 1);
    let note = Note {
        author,
        text: text.to_owned(),
    };
    let created = Json(note.json(id));
    notes.insert(id, note);
    let location = [(header::LOCATION, format!("/notes/{id}"))];
    (StatusCode::CREATED, location, created).into_response()
}

async fn read(
    State(notes): State<Notes>,
    Extension(user): Extension<User>,
    Path(id): Path<u64>,
) -> Response {
    match notes.lock().get(&id) {
        Some(note) if note.author == user.0 => Json(note.json(id)).into_response(),
        _ => not_found(),
    }
}

async fn remove(
    State(notes): State<Notes>,
    Extension(user): Extension<User>,
    Path(id): Path<u64>,
) -> Response {
    let mut notes = notes.lock();
    if notes.get(&id).is_none_or(|note| note.author != user.0) {
        return not_found();
    }
    notes.remove(&id);
    StatusCode::NO_CONTENT.into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
}
