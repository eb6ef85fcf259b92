//! What a session sends its client, as the Socket.IO events a Flask-SocketAPI
//! client listens to.

use std::sync::Weak;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use batch_core::{Outbox, Outgoing, Reply};
use http::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;
use socketioxide::socket::Socket;
use socketioxide::{SendError, SocketError};

/// How often a socket that fell behind is asked again to disconnect while its
/// queue is still full.
const DISCONNECT_RETRY: Duration = Duration::from_millis(50);

/// Emits a session's messages on its socket: change events as `create`, `patch`
/// and `delete`, a subscription's state as `state`, a refusal as `api_error`.
/// Other answers (`result`, `unsubscribed`) are acknowledgements only.
///
/// The socket is held weakly: the socket owns the session that owns this.
pub(crate) struct SocketOutbox {
    socket: Weak<Socket>,
    runtime: tokio::runtime::Handle,
    /// Set once the socket's queue overflowed: nothing more is sent, and the socket
    /// is on its way out.
    overflowed: AtomicBool,
}

/// `api_error`'s data: Flask-SocketAPI's `{error, message}`, and the status.
#[derive(Serialize)]
struct ApiError<'a> {
    error: &'static str,
    message: &'a str,
    status: u16,
}

impl SocketOutbox {
    /// An outbox for `socket`; the disconnect of a socket that falls behind runs on
    /// `runtime`.
    pub(crate) fn new(socket: Weak<Socket>, runtime: tokio::runtime::Handle) -> Self {
        Self {
            socket,
            runtime,
            overflowed: AtomicBool::new(false),
        }
    }

    fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) {
        if self.overflowed.load(Ordering::Acquire) {
            return;
        }
        let Some(socket) = self.socket.upgrade() else {
            return;
        };
        // A closed socket has no one left to tell; a message that cannot be
        // serialized (batch-core wrote it as JSON) cannot happen.
        if let Err(SendError::Socket(SocketError::InternalChannelFull)) = socket.emit(event, data) {
            self.overflow();
        }
    }

    /// The client reads slower than its messages come: rather than drop some of
    /// them silently, stop sending and disconnect it. Its queue being full, the
    /// disconnect packet waits for room (or for the heartbeat, which cannot queue
    /// its ping either, to close the transport).
    fn overflow(&self) {
        if self.overflowed.swap(true, Ordering::AcqRel) {
            return;
        }
        let socket = self.socket.clone();
        self.runtime.spawn(async move {
            while let Some(socket) = socket.upgrade() {
                match socket.disconnect() {
                    Err(SocketError::InternalChannelFull) => {}
                    Ok(()) | Err(_) => return,
                }
                tokio::time::sleep(DISCONNECT_RETRY).await;
            }
        });
    }
}

impl Outbox for SocketOutbox {
    fn send(&self, message: Outgoing<'_>) {
        match message {
            Outgoing::Event(event) => {
                if let Some(data) = raw(event.json()) {
                    self.emit(event.kind().name(), data);
                }
            }
            Outgoing::Answer(answer) => match answer.reply() {
                Reply::State { .. } => {
                    let json = answer.json();
                    if let Some(data) = raw(&json) {
                        self.emit("state", data);
                    }
                }
                Reply::Revoked { .. } => {
                    let json = answer.json();
                    if let Some(data) = raw(&json) {
                        self.emit("revoked", data);
                    }
                }
                Reply::Error { status, detail, .. } => self.emit(
                    "api_error",
                    &ApiError {
                        error: error_name(*status),
                        message: detail,
                        status: status.as_u16(),
                    },
                ),
                _ => {}
            },
        }
    }
}

/// A JSON object batch-core wrote, to emit as it is.
pub(crate) fn raw(json: &[u8]) -> Option<&RawValue> {
    std::str::from_utf8(json)
        .ok()
        .and_then(|json| serde_json::from_str(json).ok())
}

/// The name Flask-SocketAPI gives an error of this kind (its exception class).
fn error_name(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "NotFoundError",
        StatusCode::UNPROCESSABLE_ENTITY => "InvalidURIError",
        status if status.is_server_error() => "ServerError",
        _ => "InvalidRequestError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_flask_socketapi_names() {
        assert_eq!(error_name(StatusCode::NOT_FOUND), "NotFoundError");
        assert_eq!(
            error_name(StatusCode::UNPROCESSABLE_ENTITY),
            "InvalidURIError"
        );
        assert_eq!(error_name(StatusCode::BAD_REQUEST), "InvalidRequestError");
        assert_eq!(error_name(StatusCode::UNAUTHORIZED), "InvalidRequestError");
        assert_eq!(error_name(StatusCode::BAD_GATEWAY), "ServerError");
    }
}
