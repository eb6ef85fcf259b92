//! Real-time resources over WebSocket: a socket creates, patches, deletes and
//! subscribes to resources through the application's own routes, and is told of
//! every change to what it subscribed to, whichever way the change was made.
//!
//! An adapter mounts the socket path with its framework's WebSocket support and
//! hands the rest to the endpoint:
//!
//! 1. [`BatchEndpoint::admit_socket`] checks the upgrade request (origin, the cap
//!    on open sockets, and the application's middleware, through a plain `GET` of
//!    the socket path) before the adapter accepts the upgrade;
//! 2. [`BatchEndpoint::serve_socket`] serves the socket, its frames converted to and
//!    from [`Frame`]s, until it closes.
//!
//! Every message runs as an op of a batch would, through the same [`Executor`]:
//! url rules, header inheritance from the upgrade request, hooks, the server-wide
//! cap on ops in flight. A transport other than WebSocket (Socket.IO) drives a
//! [`Session`] of its own with [`BatchEndpoint::session`]; Server-Sent Events
//! ([`BatchEndpoint::serve_events`]) are one, read-only.

mod connection;
mod events;
mod frame;
mod mailbox;
mod message;
mod reply;
mod session;
mod uri;

use std::sync::Arc;

use bytes::Bytes;
use futures::{Sink, Stream};
use http::{Response, StatusCode, header, request::Parts};
use tracing::Instrument;

pub use frame::{CloseFrame, Frame};
pub use message::{Action, ClientMessage, MessageError};
pub use reply::{Answer, Reply};
pub use session::{Outbox, Outgoing, Session, SocketAdmission};

use crate::endpoint::BatchEndpoint;
use crate::executor::Executor;
use crate::model::{BatchOp, BatchRequest, Operation};
use crate::observe::{BatchId, Transport};
use crate::problem::Problem;
use mailbox::Mailbox;

impl BatchEndpoint {
    /// Whether a request for `path` is for the socket endpoint: sockets are on, and
    /// `path` is [`SocketConfig::path`](crate::SocketConfig::path) by the rule of
    /// [`Config::is_batch_path`](crate::Config::is_batch_path) (case, one trailing
    /// slash and encoded letters aside).
    pub fn is_socket_path(&self, path: &str) -> bool {
        self.config()
            .sockets()
            .is_some_and(|sockets| crate::target::is_batch_path(path, sockets.path()))
    }

    /// The answer to a request for the socket path that is not a WebSocket upgrade
    /// (another method, or no `upgrade: websocket`): 426 with `upgrade: websocket`.
    /// Every adapter answers so, whatever its framework's own rejection would be.
    pub fn upgrade_required(&self) -> Response<Bytes> {
        let mut response = Problem::new(
            StatusCode::UPGRADE_REQUIRED,
            "a socket is opened with a WebSocket upgrade: GET with upgrade: websocket",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::UPGRADE, http::HeaderValue::from_static("websocket"));
        response
    }

    /// Decides whether the upgrade request `upgrade` may open a socket, before the
    /// adapter accepts it:
    ///
    /// - sockets must be on (else 404), and the request no op of a batch (400);
    /// - a browser's `Origin` must be allowed (else 403);
    /// - a socket place must be free (else 503 with `retry-after`);
    /// - the application, sent a plain `GET` of the socket path with the request's
    ///   identity through `executor`, must not refuse it: its middleware answering
    ///   anything but 2xx, 404 or 405 refuses the upgrade with that same answer.
    pub async fn admit_socket<E: Executor>(
        &self,
        executor: &E,
        upgrade: &Parts,
    ) -> Result<SocketAdmission, Response<Bytes>> {
        let Some(sockets) = self.config().sockets() else {
            return Err(refusal(
                StatusCode::NOT_FOUND,
                "sockets are not served here",
            ));
        };
        if upgrade.extensions.get::<BatchOp>().is_some() {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                "an op of a batch cannot open a socket",
            ));
        }
        if let Some(origin) = upgrade.headers.get(header::ORIGIN) {
            let host = upgrade
                .headers
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
                .or_else(|| upgrade.uri.authority().map(|a| a.as_str()));
            let allowed = origin
                .to_str()
                .is_ok_and(|origin| sockets.allows_origin(origin, host));
            if !allowed {
                return Err(refusal(
                    StatusCode::FORBIDDEN,
                    "this origin may not open a socket here",
                ));
            }
        }
        let permit = Arc::clone(self.socket_permits())
            .try_acquire_owned()
            .map_err(|_| {
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the server has as many sockets open as it allows; retry shortly",
                )
                .retry_after(1)
                .into_response()
            })?;
        let outer = session::identity(upgrade);
        let probe = BatchRequest::new(vec![Operation::new("GET", sockets.path())]);
        let id = BatchId::generate();
        let answer = match self
            .run_as(executor, &outer, probe, &id, Transport::Socket)
            .await
        {
            Ok(response) => response.results.into_iter().next(),
            Err(problem) => return Err(problem.into_response()),
        };
        if let Some(result) = answer {
            let allowed = result.status.is_success()
                || matches!(
                    result.status,
                    StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                );
            if !allowed {
                let mut response = Response::new(Bytes::copy_from_slice(result.body.as_bytes()));
                *response.status_mut() = result.status;
                *response.headers_mut() = result.headers;
                return Err(response);
            }
        }
        Ok(SocketAdmission {
            outer,
            permit,
            read_limit: sockets.max_message().saturating_mul(4),
        })
    }

    /// A session for a client admitted by [`admit_socket`](Self::admit_socket): its
    /// messages run through `executor`, and what it is sent goes to `outbox`. For a
    /// transport other than WebSocket; [`serve_socket`](Self::serve_socket) makes
    /// its own. The transport polls [`Session::recheck`] for as long as the session
    /// lives, beside its messages: the events of a subscription due for a check
    /// wait for it.
    pub fn session<E: Executor>(
        &self,
        executor: E,
        admission: SocketAdmission,
        outbox: Arc<dyn Outbox>,
    ) -> session::Session<E> {
        Session::new(self.clone(), executor, admission, outbox)
    }

    /// Serves one socket until it closes: `incoming` yields the client's frames,
    /// `outgoing` takes the server's. Ops run through `executor`, on the task that
    /// polls the returned future; dropping it ends the socket, its running ops and
    /// its subscriptions.
    pub async fn serve_socket<E, In, Out, InErr, OutErr>(
        &self,
        executor: E,
        admission: SocketAdmission,
        incoming: In,
        outgoing: Out,
    ) where
        E: Executor,
        In: Stream<Item = Result<Frame, InErr>>,
        Out: Sink<Frame, Error = OutErr>,
    {
        let Some(config) = self.config().sockets().cloned() else {
            return;
        };
        // Named by the upgrade request's `x-request-id`, else afresh; each message's
        // batch span is a child of it.
        let span = tracing::info_span!(
            target: "batch_core::socket",
            "socket",
            id = BatchId::of(&admission.outer.headers).as_str(),
        );
        let mailbox = Arc::new(Mailbox::for_config(&config));
        let session = Session::new(self.clone(), executor, admission, mailbox.clone());
        connection::serve(session, mailbox, &config, incoming, outgoing)
            .instrument(span)
            .await;
    }
}

fn refusal(status: StatusCode, detail: &str) -> Response<Bytes> {
    Problem::new(status, detail).into_response()
}
