//! The Server-Sent Events route: `GET` at the events path, served by the endpoint
//! with the App's routes for its `GET`s, and streamed on the worker.

use actix_web::body::BodyStream;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use batch_core::{BatchEndpoint, BatchOp, Problem};
use http::StatusCode;

use crate::executor::{ActixExecutor, Dispatcher};
use crate::{actix_response, convert, unrecognised_path};

/// Answers a `GET` of the events path: the stream of the subscriptions its `uri`s
/// name, or the endpoint's refusal; an op 404, as at the socket path.
pub(crate) async fn answer(endpoint: &BatchEndpoint, request: HttpRequest) -> HttpResponse {
    if request.extensions().get::<BatchOp>().is_some() {
        return actix_response(
            Problem::new(StatusCode::NOT_FOUND, "the events stream is not a resource")
                .into_response(),
        );
    }
    let Some(dispatcher) = request.extensions().get::<Dispatcher>().cloned() else {
        return unrecognised_path("events");
    };
    let parts = match convert::outer_parts(&request) {
        Ok(parts) => parts,
        Err(err) => {
            return actix_response(
                Problem::new(StatusCode::BAD_REQUEST, err.to_string()).into_response(),
            );
        }
    };
    let executor = ActixExecutor::new(Some(dispatcher), request.peer_addr());
    match endpoint.serve_events(executor, &parts).await {
        Ok(response) => {
            let (head, stream) = response.into_parts();
            let head = http::Response::from_parts(head, bytes::Bytes::new());
            actix_response(head)
                .set_body(BodyStream::new(stream))
                .map_into_boxed_body()
        }
        Err(refusal) => actix_response(refusal),
    }
}
