//! The socket route: WebSocket upgrades at the socket path with `actix-ws`,
//! admitted by the endpoint through the App, then served on the worker.

use std::future::ready;

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Message};
use batch_core::{BatchEndpoint, BatchOp, CloseFrame, Frame, Problem};
use futures::{SinkExt, StreamExt};
use http::StatusCode;

use crate::{actix_response, outer_executor};

/// Answers a request for the socket path: an upgrade the endpoint admits is
/// answered 101 and served on a task of the worker; a refused one gets the
/// endpoint's refusal, an op 404, and anything else 426.
pub(crate) async fn answer(
    endpoint: &BatchEndpoint,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    // The admission probe is such an op: a plain GET of the socket path, sent
    // through the App to learn what its middleware says. Answered "not found", it
    // lets the upgrade through; no op ever opens a socket.
    if request.extensions().get::<BatchOp>().is_some() {
        return actix_response(
            Problem::new(
                StatusCode::NOT_FOUND,
                "the socket endpoint is not a resource",
            )
            .into_response(),
        );
    }
    // Checked before admission, and answered before the connection is handed over:
    // a refused upgrade leaves the connection a plain one, fit for the next request.
    if actix_http::ws::handshake(request.head()).is_err() {
        return actix_response(endpoint.upgrade_required());
    }
    let (executor, parts) = match outer_executor(&request, "socket") {
        Ok(both) => both,
        Err(answer) => return answer,
    };
    let admission = match endpoint.admit_socket(&executor, &parts).await {
        Ok(admission) => admission,
        Err(refusal) => return actix_response(refusal),
    };
    let Ok((response, session, messages)) = actix_ws::handle(&request, payload) else {
        return actix_response(endpoint.upgrade_required());
    };
    let limit = admission.read_limit();
    let incoming = messages
        .max_frame_size(limit)
        .aggregate_continuations()
        .max_continuation_size(limit)
        .map(|message| message.map(frame));
    let outgoing = session.with(|frame| ready(Ok::<_, actix_ws::Closed>(message(frame))));
    let endpoint = endpoint.clone();
    // The executor lives on this worker (it is not `Send`), and so does the socket.
    actix_web::rt::spawn(async move {
        endpoint
            .serve_socket(executor, admission, incoming, outgoing)
            .await;
    });
    response
}

/// An actix-ws message as a frame. actix-ws answers no ping itself: the endpoint
/// answers every ping frame it is given.
fn frame(message: AggregatedMessage) -> Frame {
    match message {
        AggregatedMessage::Text(text) => Frame::Text(text.into_bytes()),
        AggregatedMessage::Binary(bytes) => Frame::Binary(bytes),
        AggregatedMessage::Ping(bytes) => Frame::Ping(bytes),
        AggregatedMessage::Pong(bytes) => Frame::Pong(bytes),
        AggregatedMessage::Close(reason) => Frame::Close(reason.map(|reason| CloseFrame {
            code: reason.code.into(),
            reason: reason.description.unwrap_or_default(),
        })),
    }
}

/// A frame as an actix-ws message.
fn message(frame: Frame) -> Message {
    match frame {
        // The endpoint writes text as JSON, so it is always UTF-8.
        Frame::Text(text) => match text.clone().try_into() {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Binary(text),
        },
        Frame::Binary(bytes) => Message::Binary(bytes),
        Frame::Ping(bytes) => Message::Ping(bytes),
        Frame::Pong(bytes) => Message::Pong(bytes),
        Frame::Close(close) => Message::Close(close.map(|close| CloseReason {
            code: CloseCode::from(close.code),
            description: Some(close.reason).filter(|reason| !reason.is_empty()),
        })),
    }
}
