//! A small notes service on warp with the batch endpoint mounted: its own routes,
//! one filter of middleware (bearer-token authentication), and `POST /batch`.
//!
//! ```text
//! cargo run -p batch-warp --example basic [-- 127.0.0.1:3000]
//! ```
//!
//! Every route starts with the authentication filter, and `with_batch` sends every
//! op through the routes, so the filter runs for every op of a batch as for a
//! direct request, and every op acts as the caller of the batch: ops inherit its
//! `authorization` header, may not set their own, and see the caller's notes only.
//! The batch request itself is answered by `with_batch` before the routes: a batch
//! without the header is answered 200, and each of its ops 401.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use batch_core::Config;
use serde_json::{Value, json};
use warp::http::{StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

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
    serve(listener).await;
    Ok(())
}

/// Serves the notes API, with the batch endpoint, on `listener`.
pub async fn serve(listener: tokio::net::TcpListener) {
    let app = batch_warp::with_batch(routes(Notes::default()), Config::default());
    warp::serve(app).incoming(listener).run().await;
}

/// `GET/POST /notes`, `GET/DELETE /notes/{id}`, each for an authenticated caller.
/// Every rejection is recovered inside the routes, so ops get the same answers as
/// direct requests.
fn routes(notes: Notes) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let notes = warp::any().map(move || notes.clone());
    let caller = authenticated().and(notes);
    let list = caller
        .clone()
        .and(warp::path!("notes"))
        .and(warp::get())
        .map(list);
    let create = caller
        .clone()
        .and(warp::path!("notes"))
        .and(warp::post())
        .and(warp::body::json())
        .map(create);
    let read = caller
        .clone()
        .and(warp::path!("notes" / u64))
        .and(warp::get())
        .map(read);
    let remove = caller
        .and(warp::path!("notes" / u64))
        .and(warp::delete())
        .map(remove);
    list.or(create)
        .unify()
        .or(read)
        .unify()
        .or(remove)
        .unify()
        .recover(recover)
        .unify()
}

/// The caller, named by the bearer token. A real service would verify the token.
struct User(String);

/// A request without `authorization: Bearer <token>`.
#[derive(Debug)]
struct Unauthorized;

impl warp::reject::Reject for Unauthorized {}

/// Rejects a request without `authorization: Bearer <token>`; otherwise extracts
/// the caller.
fn authenticated() -> impl Filter<Extract = (User,), Error = Rejection> + Clone {
    warp::header::optional::<String>(header::AUTHORIZATION.as_str()).and_then(
        |value: Option<String>| async move {
            let token = value
                .as_deref()
                .and_then(|value| value.strip_prefix("Bearer "));
            match token.map(str::trim) {
                Some(token) if !token.is_empty() => Ok(User(token.to_owned())),
                _ => Err(warp::reject::custom(Unauthorized)),
            }
        },
    )
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

fn list(user: User, notes: Notes) -> Response {
    let notes = notes.lock();
    let mine = notes.iter().filter(|(_, note)| note.author == user.0);
    warp::reply::json(&mine.map(|(id, note)| note.json(*id)).collect::<Vec<_>>()).into_response()
}

fn create(User(author): User, notes: Notes, body: Value) -> Response {
    let Some(text) = body["text"].as_str() else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "text required");
    };
    let mut notes = notes.lock();
    let id = notes.keys().last().map_or(1, |last| last + 1);
    let note = Note {
        author,
        text: text.to_owned(),
    };
    let created = warp::reply::with_status(warp::reply::json(&note.json(id)), StatusCode::CREATED);
    notes.insert(id, note);
    warp::reply::with_header(created, header::LOCATION, format!("/notes/{id}")).into_response()
}

fn read(user: User, notes: Notes, id: u64) -> Response {
    match notes.lock().get(&id) {
        Some(note) if note.author == user.0 => warp::reply::json(&note.json(id)).into_response(),
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn remove(user: User, notes: Notes, id: u64) -> Response {
    let mut notes = notes.lock();
    if notes.get(&id).is_none_or(|note| note.author != user.0) {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    notes.remove(&id);
    StatusCode::NO_CONTENT.into_response()
}

async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    Ok(if rejection.find::<Unauthorized>().is_some() {
        let refused = error(StatusCode::UNAUTHORIZED, "a bearer token is required");
        warp::reply::with_header(refused, header::WWW_AUTHENTICATE, "Bearer").into_response()
    } else if rejection.is_not_found() {
        error(StatusCode::NOT_FOUND, "not found")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    } else {
        error(StatusCode::BAD_REQUEST, "the request could not be read")
    })
}

fn error(status: StatusCode, message: &str) -> Response {
    warp::reply::with_status(warp::reply::json(&json!({"error": message})), status).into_response()
}
