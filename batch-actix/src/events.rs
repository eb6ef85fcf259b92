//! The Server-Sent Events route: `GET` at the events path, served by the endpoint
//! with the App's routes for its `GET`s, and streamed on the worker.

use actix_web::body::BodyStream;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use batch_core::{BatchEndpoint, BatchOp, Problem};
use http::StatusCode;

use crate::{actix_response, outer_executor};

/// Answers a `GET` of the events path: the stream of the subscriptions its `uri`s
/// name, or the endpoint's refusal; an op 404, as at the socket path.
pub(crate) async fn answer(endpoint: &BatchEndpoint, request: HttpRequest) -> HttpResponse {
    if request.extensions().get::<BatchOp>().is_some() {
        return actix_response(
            Problem::new(StatusCode::NOT_FOUND, "the events stream is not a resource")
                .into_response(),
        );
    }
    let (executor, parts) = match outer_executor(&request, "events") {
        Ok(both) => both,
        Err(answer) => return answer,
    };
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
